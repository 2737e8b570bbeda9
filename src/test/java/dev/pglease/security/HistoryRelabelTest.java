package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.TestDatabase;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * History can not be relabelled: whatever a candidate does around its own protocol statements (a transaction-local
 * setting set before the statement, or in the statement's RETURNING list), each event in lease_events names the
 * change that happened. Only force_release() records force_released, only handoff() records handed_off, a takeover
 * is recorded as taken_over and a release by its holder as released. A refused statement is as good an outcome as
 * a correctly labelled one.
 */
@Tag("security")
class HistoryRelabelTest {

    private static HostileSchema h;

    @BeforeAll
    static void setUp() {
        h = HostileSchema.create();
    }

    private static String label(String kind) {
        return "set_config('pglease.event_kind', '" + kind + "', true)";
    }

    @Test
    void aCandidatesReleaseCanNotBeRecordedAsForceReleasedThroughItsReturningList() throws Exception {
        String lease = "relabel-release-returning";
        try (Attempt b = new Attempt(h, h.candB)) {
            acquire(b, lease, "b", "30 seconds");
            b.run("UPDATE " + h.schema + ".leases SET holder = NULL, expires_at = clock_timestamp(),"
                    + " renewed_at = clock_timestamp() WHERE name = '" + lease + "' RETURNING "
                    + label("force_released"));
            assertEveryEventNamesItsChange(lease, b);
        }
    }

    @Test
    void aCandidatesReleaseCanNotBeRecordedAsForceReleasedThroughASettingBeforeIt() throws Exception {
        String lease = "relabel-release-setting";
        try (Attempt b = new Attempt(h, h.candB)) {
            acquire(b, lease, "b", "30 seconds");
            b.c.setAutoCommit(false);
            b.run("SELECT " + label("force_released"));
            b.run("SELECT " + h.schema + ".release('" + lease + "', 'b', (SELECT token FROM " + h.schema
                    + ".leases WHERE name = '" + lease + "'))");
            commit(b);
            assertEveryEventNamesItsChange(lease, b);
        }
    }

    @Test
    void aCandidatesAcquireCanNotBeRecordedAsHandedOff() throws Exception {
        String lease = "relabel-acquire";
        try (Attempt b = new Attempt(h, h.candB)) {
            b.run("INSERT INTO " + h.schema + ".leases (name, holder, token, expires_at) VALUES ('" + lease
                    + "', 'b', 1, clock_timestamp() + interval '30 seconds') RETURNING " + label("handed_off"));
            b.c.setAutoCommit(false);
            String again = lease + "-setting";
            b.run("SELECT " + label("handed_off"));
            b.run("SELECT * FROM " + h.schema + ".acquire('" + again + "', 'b', 30000)");
            commit(b);
            assertEveryEventNamesItsChange(lease, b);
            assertEveryEventNamesItsChange(again, b);
        }
    }

    @Test
    void aCandidatesTakeoverOfAnExpiredLeaseCanNotBeRecordedAsAcquired() throws Exception {
        String lease = "relabel-takeover";
        try (Attempt a = new Attempt(h, h.candA);
                Attempt b = new Attempt(h, h.candB)) {
            acquire(a, lease, "a", "50 milliseconds");
            awaitExpired(lease);
            b.run("UPDATE " + h.schema + ".leases SET holder = 'b', token = token + 1, acquired_at = clock_timestamp(),"
                    + " renewed_at = clock_timestamp(), expires_at = clock_timestamp() + interval '30 seconds'"
                    + " WHERE name = '" + lease + "' RETURNING " + label("acquired"));
            b.run("SELECT *, " + label("acquired") + " FROM " + h.schema + ".acquire('" + lease + "', 'b', 30000)");
            assertEveryEventNamesItsChange(lease, b);
        }
    }

    @Test
    void aCandidatesTakeoverCanNotBeRecordedAsHandedOffOrForceReleased() throws Exception {
        for (String kind : List.of("handed_off", "force_released")) {
            String lease = "relabel-takeover-" + kind;
            try (Attempt a = new Attempt(h, h.candA);
                    Attempt b = new Attempt(h, h.candB)) {
                acquire(a, lease, "a", "50 milliseconds");
                awaitExpired(lease);
                b.run("UPDATE " + h.schema + ".leases SET holder = 'b', token = token + 1,"
                        + " acquired_at = clock_timestamp(), renewed_at = clock_timestamp(),"
                        + " expires_at = clock_timestamp() + interval '30 seconds'"
                        + " WHERE name = '" + lease + "' RETURNING " + label(kind));
                b.run("SELECT *, " + label(kind) + " FROM " + h.schema + ".acquire('" + lease + "', 'b', 30000)");
                assertEveryEventNamesItsChange(lease, b);
            }
        }
    }

    private static void acquire(Attempt who, String lease, String holder, String duration) {
        String answer = who.run("SELECT granted FROM " + h.schema + ".acquire('" + lease + "', '" + holder
                + "', (extract(epoch FROM interval '" + duration + "') * 1000)::bigint)");
        assertThat(answer).as("the set-up acquire: %s", who).isEqualTo("t");
    }

    private static void commit(Attempt a) {
        try {
            a.c.commit();
            a.log.add("COMMIT -> ok");
        } catch (SQLException e) {
            a.log.add("COMMIT -> " + e.getSQLState() + " " + e.getMessage());
        }
    }

    private static void awaitExpired(String lease) {
        Awaitility.await()
                .atMost(Duration.ofSeconds(5))
                .until(() -> "t"
                        .equals(HostileSchema.query(
                                null,
                                "SELECT expires_at <= clock_timestamp() FROM " + h.schema + ".leases WHERE name = '"
                                        + lease + "'")));
    }

    /**
     * No operator acted in these tests: every event must be the kind its row change is (a release by the holder,
     * an acquire of a free lease, a takeover from another holder), never an operator's kind.
     */
    private static void assertEveryEventNamesItsChange(String lease, Attempt attacker) throws SQLException {
        List<String> wrong = new ArrayList<>();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT kind, holder, previous_holder, token FROM " + h.schema
                        + ".lease_events WHERE name = ? ORDER BY id")) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    String kind = rs.getString(1);
                    String holder = rs.getString(2);
                    String previous = rs.getString(3);
                    String truth = holder == null
                            ? "released"
                            : previous == null || previous.equals(holder) ? "acquired" : "taken_over";
                    if (!kind.equals(truth)) {
                        wrong.add("token " + rs.getLong(4) + " " + previous + " -> " + holder + " recorded as " + kind
                                + ", was " + truth);
                    }
                }
            }
        }
        assertThat(wrong)
                .as("events of %s recorded as a kind the change was not; the attack:\n%s", lease, attacker)
                .isEmpty();
    }
}
