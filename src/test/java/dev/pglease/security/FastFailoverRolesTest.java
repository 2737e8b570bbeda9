package dev.pglease.security;

import static dev.pglease.testkit.Lane.PGBOUNCER_TRANSACTION;
import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.testkit.NotInLane;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Crash takeover under the candidate role: the access guard lets a candidate take an unexpired lease only when the
 * database proves the holder's session ended, and a candidate can not fake that proof.
 */
@Tag("security")
@NotInLane(
        value = PGBOUNCER_TRANSACTION,
        because = "fast failover needs session-level advisory locks held on one server session, which "
                + "transaction pooling does not give: pglease refuses the mode there at start "
                + "(UNSUPPORTED_POOLING)")
class FastFailoverRolesTest {

    private static String schema;
    private static String candA;
    private static String candB;

    @BeforeAll
    static void setUp() {
        schema = TestDatabase.freshSchema();
        PgLease.Roles roles = PgLease.Roles.defaultsFor(schema);
        candA = Users.create(schema + "_ff_a", roles.candidate());
        candB = Users.create(schema + "_ff_b", roles.candidate());
    }

    private static LeaseConfig config(String label) {
        return LeaseConfig.builder()
                .schema(schema)
                .holderLabel(label)
                .fastFailover(true)
                .leaseDuration(Duration.ofSeconds(30))
                .renewDeadline(Duration.ofSeconds(20))
                .retryPeriod(Duration.ofMillis(500))
                .build();
    }

    @Test
    void aCandidateTakesOverFromACandidateWhoseSessionWasTerminated() throws Exception {
        String lease = "roles-crash-" + System.nanoTime();
        BlockingQueue<String> bEvents = new LinkedBlockingQueue<>();
        try (PgLease a = PgLease.create(Users.as(candA), config("a"));
                PgLease b = PgLease.create(Users.as(candB), config("b"));
                Elector ea = a.elector(lease, new Events(new LinkedBlockingQueue<>()))) {
            Leadership first = ea.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            try (Elector eb = b.elector(lease, new Events(bEvents))) {
                Thread.sleep(500);
                assertThat(eb.isLeader())
                        .as("no takeover while the holder's session lives")
                        .isFalse();
                // A candidate can not register someone else's grant, nor write the registrations by hand.
                assertThat(Users.query(
                                candB,
                                "SELECT " + schema + ".fast_failover_register('" + lease + "', 'b', " + first.token()
                                        + ")"))
                        .isEqualTo("f");
                // Nor withdraw someone else's registration (which would delay the takeover to expiry).
                assertThat(Users.query(
                                candB,
                                "SELECT " + schema + ".fast_failover_unregister('" + lease + "', " + first.token()
                                        + ")"))
                        .isEqualTo("f");
                Users.denied(candB, "DELETE FROM " + schema + ".fast_failover_sessions");
                Users.denied(
                        candB,
                        "UPDATE " + schema + ".leases SET holder = 'b', token = token + 1" + " WHERE name = '" + lease
                                + "'");

                terminateSessionsOf(candA);
                assertThat(bEvents.poll(10, TimeUnit.SECONDS)).isEqualTo("elected " + (first.token() + 1));
            }
        }
    }

    private record Events(BlockingQueue<String> queue) implements LeaderListener {
        @Override
        public void onElected(Leadership l) {
            queue.add("elected " + l.token());
        }

        @Override
        public void onRevoked(Leadership l) {
            queue.add("revoked " + l.token());
        }
    }

    private static void terminateSessionsOf(String user) throws Exception {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = ?")) {
            ps.setString(1, user);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                assertThat(rs.getInt(1)).isPositive();
            }
        }
    }
}
