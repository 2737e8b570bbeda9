package dev.pglease.anylang;

import static dev.pglease.anylang.CampaignerProcess.number;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.pglease.Required;
import dev.pglease.TestDatabase;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * What every campaigner in another language must do, proved against the test server with two campaigners of the
 * language, each logged in as its own member of the candidate role: one leader at a time, a graceful hand-over, a
 * takeover after a crash within the lease, and a paused leader that never writes after its deadline while the
 * protected table refuses its stale token.
 */
abstract class CampaignerContract {

    static final long LEASE_MS = 3000;
    static final long RENEW_DEADLINE_MS = 2000;
    static final long RETRY_MS = 300;
    /** Scheduling, process start-up and statement latency on a loaded two-core machine. */
    static final long MARGIN_MS = 1500;

    private final String lease = "payments";
    private String schema;

    /** The command that runs one campaigner of the language, if this machine has what it needs. */
    abstract Optional<List<String>> program();

    /** What the language needs, for the skip (or the failure under CI=true) when it is missing. */
    abstract String requirement();

    @BeforeEach
    void freshSchema() {
        Required.assume(program().isPresent(), requirement());
        assumeFalse(
                TestDatabase.throughPooler(),
                "the campaigners set their timeouts with the startup parameter "
                        + "options, which PgBouncer 1.18 refuses");
        schema = TestDatabase.freshSchema();
    }

    private CampaignerProcess start(String name, Campaigners.Login login, String... extra) throws Exception {
        List<String> args = new ArrayList<>(List.of(
                "--dsn",
                login.conninfo(),
                "--lease",
                lease,
                "--schema",
                schema,
                "--lease-duration",
                LEASE_MS + "ms",
                "--renew-deadline",
                RENEW_DEADLINE_MS + "ms",
                "--retry-period",
                RETRY_MS + "ms",
                "--holder-label",
                name,
                "--trace"));
        args.addAll(List.of(extra));
        CampaignerProcess p = CampaignerProcess.start(name, program().orElseThrow(), args, login);
        p.await("started", Duration.ofSeconds(30));
        return p;
    }

    /** Waits until one of them is elected and returns it. */
    private static CampaignerProcess leaderOf(CampaignerProcess a, CampaignerProcess b) {
        long until = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (System.nanoTime() - until < 0) {
            if (!a.events("elected").isEmpty()) {
                return a;
            }
            if (!b.events("elected").isEmpty()) {
                return b;
            }
            CampaignerProcess.sleep(10);
        }
        throw new AssertionError("nobody was elected within 20 s\n" + a.output() + "\n" + b.output());
    }

    @Test
    void exactlyOneOfTwoCandidatesIsElectedAndTheDatabaseListsIt() throws Exception {
        try (CampaignerProcess a = start("a", Campaigners.login(schema, "a"));
                CampaignerProcess b = start("b", Campaigners.login(schema, "b"))) {
            CampaignerProcess leader = leaderOf(a, b);
            CampaignerProcess standby = leader == a ? b : a;
            CampaignerProcess.sleep(4 * RETRY_MS);

            assertThat(leader.events("elected")).as(leader.output()).hasSize(1);
            assertThat(leader.events("revoked")).as(leader.output()).isEmpty();
            assertThat(standby.events("elected")).as(standby.output()).isEmpty();
            assertThat(standby.events("acquire"))
                    .as("the standby keeps campaigning\n" + standby.output())
                    .hasSizeGreaterThanOrEqualTo(2)
                    .allSatisfy(e -> assertThat(e.get("result")).isEqualTo("denied"));
            assertThat(holderNow()).isEqualTo(leader.holder());
            assertThat(leader.events("renew"))
                    .as("the leader renews every retry period\n" + leader.output())
                    .hasSizeGreaterThanOrEqualTo(2)
                    .allSatisfy(e -> assertThat(e.get("result")).isEqualTo("ok"));
            for (CampaignerProcess p : List.of(a, b)) {
                assertThat(p.lines())
                        .as("stdout carries one JSON object per line and nothing else")
                        .allSatisfy(line ->
                                assertThat(line).startsWith("{\"event\":\"").endsWith("}"));
            }
        }
    }

    @Test
    void aLeaderStoppedWithSigtermReleasesAndTheStandbyIsElectedWithinAboutARetryPeriod() throws Exception {
        try (CampaignerProcess a = start("a", Campaigners.login(schema, "a"));
                CampaignerProcess b = start("b", Campaigners.login(schema, "b"))) {
            CampaignerProcess leader = leaderOf(a, b);
            CampaignerProcess standby = leader == a ? b : a;
            long token = number(leader.events("elected").get(0), "token");

            long stoppedAt = System.currentTimeMillis();
            assertThat(leader.terminate(Duration.ofSeconds(10)))
                    .as("exit code after SIGTERM\n" + leader.output())
                    .isZero();
            Map<String, Object> elected = standby.await("elected", Duration.ofMillis(LEASE_MS + RETRY_MS + MARGIN_MS));

            assertThat(leader.events("released"))
                    .as(leader.output())
                    .singleElement()
                    .satisfies(e -> assertThat(number(e, "token")).isEqualTo(token));
            assertThat(number(elected, "t") - stoppedAt)
                    .as("time from SIGTERM to the standby's election")
                    .isLessThan(RETRY_MS + MARGIN_MS);
            assertThat(number(elected, "token")).isGreaterThan(token);
            // the lease was given back, not taken over after it expired
            assertThat(lastEvents(2))
                    .containsExactly(
                            List.of("released", token, "null", leader.holder()),
                            List.of("acquired", number(elected, "token"), standby.holder(), "null"));
        }
    }

    @Test
    void aKilledLeadersLeaseIsTakenOverWithinLeaseDurationPlusRetryPeriod() throws Exception {
        try (CampaignerProcess a = start("a", Campaigners.login(schema, "a"));
                CampaignerProcess b = start("b", Campaigners.login(schema, "b"))) {
            CampaignerProcess leader = leaderOf(a, b);
            CampaignerProcess standby = leader == a ? b : a;
            long token = number(leader.events("elected").get(0), "token");

            long killedAt = System.currentTimeMillis();
            leader.kill();
            Map<String, Object> elected = standby.await("elected", Duration.ofMillis(LEASE_MS + RETRY_MS + MARGIN_MS));

            assertThat(number(elected, "t") - killedAt)
                    .as("time from kill -9 to the standby's election")
                    .isLessThanOrEqualTo(LEASE_MS + RETRY_MS + MARGIN_MS);
            assertThat(lastEvents(1))
                    .containsExactly(
                            List.of("taken_over", number(elected, "token"), standby.holder(), leader.holder()));
            assertThat(number(elected, "token")).isGreaterThan(token);
        }
    }

    @Test
    void aLeaderPausedPastItsLeaseNeverWritesAfterItsDeadlineAndTheProtectedTableRefusesItsToken() throws Exception {
        String work = Campaigners.protectedCounter(schema, "work", lease);
        Campaigners.Login loginA = Campaigners.login(schema, "a");
        Campaigners.Login loginB = Campaigners.login(schema, "b");
        try (CampaignerProcess a = start(
                        "a", loginA, "--work", "fenced-counter", "--work-schema", work, "--work-interval", "50ms");
                CampaignerProcess b = start(
                        "b", loginB, "--work", "fenced-counter", "--work-schema", work, "--work-interval", "50ms")) {
            CampaignerProcess leader = leaderOf(a, b);
            CampaignerProcess standby = leader == a ? b : a;
            Campaigners.Login leaderLogin = leader == a ? loginA : loginB;
            long token = number(leader.events("elected").get(0), "token");
            leader.await("write", e -> "accepted".equals(e.get("result")), Duration.ofSeconds(10));

            long stoppedAt = System.currentTimeMillis();
            leader.signal("STOP");
            Map<String, Object> elected = standby.await("elected", Duration.ofMillis(LEASE_MS + RETRY_MS + MARGIN_MS));
            long newToken = number(elected, "token");
            standby.await(
                    "write",
                    e -> "accepted".equals(e.get("result")) && number(e, "token") == newToken,
                    Duration.ofSeconds(10));
            CampaignerProcess.sleep(Math.max(0, stoppedAt + LEASE_MS + 500 - System.currentTimeMillis()));
            leader.signal("CONT");
            Map<String, Object> revoked = leader.await("revoked", Duration.ofSeconds(10));
            CampaignerProcess.sleep(4 * RETRY_MS);
            int leaderExit = leader.terminate(Duration.ofSeconds(10));
            int standbyExit = standby.terminate(Duration.ofSeconds(10));

            String output = leader.output() + "\n" + standby.output();
            assertThat(List.of(leaderExit, standbyExit)).as(output).containsOnly(0);
            assertThat(number(revoked, "token")).isEqualTo(token);
            assertThat((String) revoked.get("reason")).contains("deadline");
            for (CampaignerProcess p : List.of(leader, standby)) {
                assertThat(p.events("write"))
                        .as("every write starts before its local deadline\n" + output)
                        .isNotEmpty()
                        .allSatisfy(w -> assertThat(number(w, "start")).isLessThanOrEqualTo(number(w, "deadline")));
            }
            assertThat(leader.events("write"))
                    .as("after its step-down the paused leader writes nothing\n" + output)
                    .allSatisfy(w -> assertThat(number(w, "start")).isLessThan(number(revoked, "t")));

            List<long[]> log = acceptLog(work);
            assertThat(log)
                    .as("the protected table accepted writes of both grants")
                    .anySatisfy(r -> assertThat(r[1]).isEqualTo(token))
                    .anySatisfy(r -> assertThat(r[1]).isEqualTo(newToken));
            long highest = 0;
            for (long[] row : log) {
                assertThat(row[1])
                        .as("tokens never go down in the order the counter accepted writes")
                        .isGreaterThanOrEqualTo(highest);
                highest = row[1];
            }
            assertThat(log.stream().map(r -> r[0]).distinct().count())
                    .as("no lost update")
                    .isEqualTo(log.size());
            Map<Long, Long> tokenOfValue = new HashMap<>();
            log.forEach(r -> tokenOfValue.put(r[0], r[1]));
            for (CampaignerProcess p : List.of(leader, standby)) {
                for (Map<String, Object> w : p.events("write")) {
                    if ("accepted".equals(w.get("result"))) {
                        assertThat(tokenOfValue.get(number(w, "value")))
                                .as("acknowledged write %s is in the table", w)
                                .isEqualTo(number(w, "token"));
                    }
                }
            }

            // whoever sends the paused leader's write now, with its token or without a fence, the table refuses it
            assertThat(staleWrite(leaderLogin, work, "SELECT " + schema + ".fence('" + lease + "', " + token + ")"))
                    .isEqualTo("PL001");
            assertThat(staleWrite(leaderLogin, work, null)).isEqualTo("PL002");
            assertThat(acceptLog(work)).hasSameSizeAs(log);
        }
    }

    /** The holder of the lease now, by the database clock (null when free). */
    private String holderNow() throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT holder FROM " + schema + ".status(?)")) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getString(1) : null;
            }
        }
    }

    /** The last {@code n} lease events of the lease, oldest first: kind, token, holder, previous holder. */
    private List<List<Object>> lastEvents(int n) throws SQLException {
        List<List<Object>> rows = new ArrayList<>();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT kind, token, holder, previous_holder FROM ("
                        + "SELECT * FROM " + schema + ".lease_events WHERE name = ? ORDER BY id DESC LIMIT ?) e "
                        + "ORDER BY id")) {
            ps.setString(1, lease);
            ps.setInt(2, n);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    rows.add(List.of(
                            rs.getString(1),
                            rs.getLong(2),
                            String.valueOf(rs.getString(3)),
                            String.valueOf(rs.getString(4))));
                }
            }
        }
        return rows;
    }

    /** The counter's accept log in the order of the counter values: value, token. */
    private List<long[]> acceptLog(String work) throws SQLException {
        List<long[]> rows = new ArrayList<>();
        try (Connection c = TestDatabase.dataSource().getConnection();
                Statement s = c.createStatement();
                ResultSet rs =
                        s.executeQuery("SELECT value, token FROM " + work + ".fenced_counter_log ORDER BY value, id")) {
            while (rs.next()) {
                rows.add(new long[] {rs.getLong(1), rs.getLong(2)});
            }
        }
        return rows;
    }

    /**
     * A write into the protected counter log as {@code login}, after {@code fence} (or with no fence when null),
     * in one transaction that is rolled back; returns the SQLSTATE it failed with, or "none".
     */
    private String staleWrite(Campaigners.Login login, String work, String fence) throws SQLException {
        try (Connection c = login.dataSource().getConnection()) {
            c.setAutoCommit(false);
            Throwable t = catchThrowable(() -> {
                try (Statement s = c.createStatement()) {
                    if (fence != null) {
                        s.execute(fence);
                    }
                    s.executeUpdate("INSERT INTO " + work + ".fenced_counter_log (name, token, holder, value) "
                            + "VALUES ('" + lease + "', 1, 'stale', -1)");
                }
            });
            c.rollback();
            return t instanceof SQLException e ? e.getSQLState() : "none";
        }
    }
}
