package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * No grant lasts longer than one day, whoever asks: the schema's protocol functions refuse a time to live (and a
 * fence bound, and a lock's lockAtLeastFor) above 86,400,000 ms with SQLSTATE 22023 naming the value, for a
 * candidate login calling them by hand as for the Java client, and accept exactly one day. The Java configuration
 * refuses the same before anything reaches the database.
 */
class OneDayCapTest {

    private static final long DAY_MS = 86_400_000L;
    private static HostileSchema h;

    @BeforeAll
    static void schema() {
        h = HostileSchema.create();
    }

    @Test
    void everyDurationACandidateCanPassIsCappedAtOneDayByTheSchema() throws Exception {
        String s = h.schema;
        String lease = "cap-" + System.nanoTime();
        String lock = "cap-lock-" + System.nanoTime();
        long token = Long.parseLong(
                firstColumn(h.candA, "SELECT token FROM " + s + ".acquire('" + lease + "', 'a', " + DAY_MS + ")"));
        long lockToken = Long.parseLong(
                firstColumn(h.candA, "SELECT token FROM " + s + ".acquire('" + lock + "', 'a#lock', 1000, 'lock')"));

        Map<String, String> overOneDay = new LinkedHashMap<>();
        overOneDay.put("acquire", "SELECT * FROM " + s + ".acquire('cap-new', 'a', " + (DAY_MS + 1) + ")");
        overOneDay.put(
                "renew_all",
                "SELECT * FROM " + s + ".renew_all('a', ARRAY['" + lease + "'], ARRAY[" + token + "::bigint], "
                        + (DAY_MS + 1) + ")");
        overOneDay.put("renew", "SELECT " + s + ".renew('" + lease + "', 'a', " + token + ", " + (DAY_MS + 1) + ")");
        overOneDay.put(
                "lock_extend",
                "SELECT " + s + ".lock_extend('" + lock + "', 'a#lock', " + lockToken + ", " + (DAY_MS + 1) + ")");
        overOneDay.put(
                "lock_unlock",
                "SELECT " + s + ".lock_unlock('" + lock + "', 'a#lock', " + lockToken + ", " + (DAY_MS + 1) + ")");
        overOneDay.put(
                "fast_failover_take_over",
                "SELECT " + s + ".fast_failover_take_over('" + lease + "', 'b', " + (DAY_MS + 1) + ")");
        overOneDay.put(
                "group_join", "SELECT * FROM " + s + ".group_join('cap-group', 'a', 4, 1, 0, " + (DAY_MS + 1) + ")");
        overOneDay.put(
                "group_renew",
                "SELECT * FROM " + s + ".group_renew('a', ARRAY['cap-group'], ARRAY['" + lease + "'], ARRAY[" + token
                        + "::bigint], " + (DAY_MS + 1) + ")");
        overOneDay.put(
                "fence", "BEGIN; SELECT " + s + ".fence('" + lease + "', " + token + ", " + (DAY_MS + 1) + "); COMMIT");

        Map<String, String> refusals = new LinkedHashMap<>();
        overOneDay.forEach((function, sql) -> refusals.put(function, refusal(h.candA, sql)));
        assertThat(refusals)
                .as("one millisecond over a day, through each function a candidate may call")
                .allSatisfy((function, refusal) ->
                        assertThat(refusal).as(function).startsWith("22023 ").contains(Long.toString(DAY_MS + 1)));

        assertThat(firstColumn(h.candA, "SELECT " + s + ".renew('" + lease + "', 'a', " + token + ", " + DAY_MS + ")"))
                .as("exactly one day is allowed")
                .isEqualTo("t");
        assertThat(firstColumn(
                        null,
                        "SELECT expires_at <= clock_timestamp() + interval '1 day' FROM " + s + ".leases WHERE name = '"
                                + lease + "'"))
                .as("the stored expiry is at most one day away")
                .isEqualTo("t");
    }

    @Test
    void theJavaClientRefusesMoreThanOneDayBeforeAskingTheDatabase() throws Exception {
        assertThat(refusalOf(() -> LeaseConfig.builder()
                        .leaseDuration(Duration.ofDays(1).plusMillis(1))
                        .build()))
                .contains("leaseDuration must be between PT0.001S and PT24H");
        try (PgLease pglease = PgLease.create(
                        h.as(h.candA), LeaseConfig.builder().schema(h.schema).build());
                Elector elector = pglease.elector("cap-java-" + System.nanoTime(), new LeaderListener() {
                    @Override
                    public void onElected(Leadership leadership) {}

                    @Override
                    public void onRevoked(Leadership leadership) {}
                })) {
            assertThat(refusalOf(() ->
                            pglease.tryLock("cap-java-lock", Duration.ofDays(1).plusMillis(1))))
                    .contains("must be between PT0.001S and PT24H");
            assertThat(elector).isNotNull();
        }
    }

    private static String refusalOf(Runnable call) {
        try {
            call.run();
            return "accepted";
        } catch (IllegalArgumentException e) {
            return e.getMessage();
        }
    }

    /** "SQLSTATE message" of the refusal, or "accepted". */
    private static String refusal(String login, String sql) {
        try (Connection c = h.as(login).getConnection();
                Statement st = c.createStatement()) {
            st.execute(sql);
            return "accepted";
        } catch (SQLException e) {
            return e.getSQLState() + " " + e.getMessage();
        }
    }

    private static String firstColumn(String login, String sql) throws SQLException {
        if (login == null) {
            return HostileSchema.query(null, sql);
        }
        try (Connection c = h.as(login).getConnection();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery(sql)) {
            assertThat(rs.next()).as(sql).isTrue();
            return rs.getString(1);
        }
    }
}
