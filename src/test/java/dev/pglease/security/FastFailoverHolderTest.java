package dev.pglease.security;

import static dev.pglease.testkit.Lane.PG13;
import static dev.pglease.testkit.Lane.PGBOUNCER_TRANSACTION;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.testkit.NotInLane;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Fast failover keeps the one-leader rule: when the holder's lease session ends, the holder stops leading no later
 * than a standby starts; settings an administrator commonly puts on a role (an idle-session timeout on the
 * holder's, a lock timeout on the standby's) neither end a healthy holder's lease nor slow a takeover; a pooled
 * connection never goes back to its pool holding the lease's session lock; and a fence that finds the token moved
 * on ends the leadership.
 */
@Timeout(value = 90)
@Tag("security")
@NotInLane(
        value = PGBOUNCER_TRANSACTION,
        because = "fast failover needs session-level advisory locks held on one server session, which "
                + "transaction pooling does not give: pglease refuses the mode there at start "
                + "(UNSUPPORTED_POOLING)")
class FastFailoverHolderTest {

    /** The timings of the reproduction: lease 10 s, renew deadline 6 s, retry 2 s. */
    private static LeaseConfig config(HostileSchema h, String label) {
        return LeaseConfig.builder()
                .schema(h.schema)
                .holderLabel(label)
                .fastFailover(true)
                .leaseDuration(Duration.ofSeconds(10))
                .renewDeadline(Duration.ofSeconds(6))
                .retryPeriod(Duration.ofSeconds(2))
                .build();
    }

    /** Records each election with the time and what another leadership said at that moment. */
    static final class Standby implements LeaderListener {
        final CompletableFuture<Long> electedAt = new CompletableFuture<>();
        final CompletableFuture<Boolean> oldValidAtElection = new CompletableFuture<>();
        final List<String> revocations = new CopyOnWriteArrayList<>();
        volatile Leadership watched;

        @Override
        public void onElected(Leadership l) {
            Leadership old = watched;
            oldValidAtElection.complete(old != null && old.isValid());
            electedAt.complete(System.nanoTime());
        }

        @Override
        public void onRevoked(Leadership l) {
            revocations.add("token " + l.token() + ": " + l.revocationReason());
        }
    }

    @Test
    void whenTheHoldersLeaseSessionIsTerminatedItStopsLeadingNoLaterThanAStandbyIsElected() throws Exception {
        HostileSchema h = HostileSchema.create();
        String lease = "ff-overlap";
        Standby holderEvents = new Standby();
        Standby standbyEvents = new Standby();
        try (PgLease a = PgLease.create(h.as(h.candA), config(h, "holder"));
                PgLease b = PgLease.create(h.as(h.candB), config(h, "standby"));
                Elector ea = a.elector(lease, holderEvents)) {
            Leadership old = ea.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            standbyEvents.watched = old;
            try (Elector eb = b.elector(lease, standbyEvents)) {
                awaitStandbyWaiting(h, lease);
                terminateLeaseSessionOf(h.candA);
                long elected = standbyEvents.electedAt.get(15, TimeUnit.SECONDS);
                boolean oldValid = standbyEvents.oldValidAtElection.get();
                Awaitility.await()
                        .atMost(Duration.ofSeconds(10))
                        .pollInterval(Duration.ofMillis(5))
                        .until(() -> !old.isValid());
                long overlapMs = (System.nanoTime() - elected) / 1_000_000;
                assertThat(oldValid)
                        .as(
                                "the old holder's leadership (token %d) was still valid when the standby was "
                                        + "elected: two leaders for about %d ms",
                                old.token(), oldValid ? overlapMs : 0)
                        .isFalse();
            }
        }
    }

    @Test
    @NotInLane(value = PG13, because = "sets idle_session_timeout, which PostgreSQL 14 introduced")
    void aHealthyHolderWhoseRoleHasAnIdleSessionTimeoutIsNotTakenOver() throws Exception {
        HostileSchema h = HostileSchema.create();
        String holder = h.login("idle", h.roles.candidate());
        HostileSchema.superuser("ALTER ROLE " + holder + " SET idle_session_timeout = '1s'");
        String lease = "ff-idle";
        Standby holderEvents = new Standby();
        Standby standbyEvents = new Standby();
        try (PgLease a = PgLease.create(h.as(holder), config(h, "holder"));
                PgLease b = PgLease.create(h.as(h.candB), config(h, "standby"));
                Elector ea = a.elector(lease, holderEvents)) {
            Leadership l = ea.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            try (Elector eb = b.elector(lease, standbyEvents)) {
                Throwable tookOver = catchThrowable(() -> standbyEvents.electedAt.get(5, TimeUnit.SECONDS));
                assertThat(standbyEvents.electedAt.isDone())
                        .as(
                                "a standby took over from a healthy holder whose role"
                                        + " has idle_session_timeout = 1s (holder revocations: %s)",
                                holderEvents.revocations)
                        .isFalse();
                assertThat(tookOver).isNotNull();
                assertThat(holderEvents.revocations)
                        .as("revocations of the healthy holder")
                        .isEmpty();
                assertThat(l.isValid()).isTrue();
            }
        }
    }

    @Test
    void aStandbyWhoseRoleHasALockTimeoutTakesOverWithinASecondOfTheHoldersCrash() throws Exception {
        HostileSchema h = HostileSchema.create();
        String holder = h.login("crash", h.roles.candidate());
        String standby = h.login("lt", h.roles.candidate());
        HostileSchema.superuser("ALTER ROLE " + standby + " SET lock_timeout = '500ms'");
        String lease = "ff-lock-timeout";
        Standby standbyEvents = new Standby();
        try (PgLease a = PgLease.create(h.as(holder), config(h, "holder"));
                PgLease b = PgLease.create(h.as(standby), config(h, "standby"));
                Elector ea = a.elector(lease, new Standby())) {
            ea.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            try (Elector eb = b.elector(lease, standbyEvents)) {
                awaitStandbyWaiting(h, lease);
                Thread.sleep(1_200); // the standby's wait has outlived its role's lock timeout twice
                // the holder's process dies (kill -9): its sessions end and it never comes back
                HostileSchema.superuser("ALTER ROLE " + holder + " NOLOGIN");
                long killed = System.nanoTime();
                HostileSchema.superuser(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '" + holder + "'");
                Throwable none = catchThrowable(() -> standbyEvents.electedAt.get(12, TimeUnit.SECONDS));
                HostileSchema.superuser("ALTER ROLE " + holder + " LOGIN"); // so that its close does not wait
                String took = none == null
                        ? ((standbyEvents.electedAt.get() - killed) / 1_000_000) + " ms"
                        : "no takeover within 12 s";
                assertThat(none == null && (standbyEvents.electedAt.get() - killed) <= 1_000_000_000L)
                        .as("takeover after the holder crashed, the standby's role has lock_timeout = 500ms: %s", took)
                        .isTrue();
            }
        }
    }

    @Test
    void aPooledConnectionNeverGoesBackToItsPoolHoldingTheLeasesSessionLock() throws Exception {
        HostileSchema h = HostileSchema.create();
        String lease = "ff-pool";
        HikariConfig hc = new HikariConfig();
        hc.setJdbcUrl(h.url(h.candA));
        hc.setMaximumPoolSize(6);
        hc.setMinimumIdle(0);
        try (HikariDataSource pool = new HikariDataSource(hc)) {
            PgLease a = PgLease.create(pool, config(h, "pooled"));
            try (Elector ea = a.elector(lease, new Standby())) {
                Leadership l = ea.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
                // a renewal refused by the server (not a timeout, not a broken connection): the lease connection
                // is given up, and goes back to the pool
                String renew = h.schema + ".renew_all(text, text[], bigint[], bigint)";
                HostileSchema.superuser("REVOKE EXECUTE ON FUNCTION " + renew + " FROM " + h.roles.candidate());
                try {
                    Awaitility.await().atMost(Duration.ofSeconds(10)).until(() -> !l.isValid());
                } finally {
                    HostileSchema.superuser("GRANT EXECUTE ON FUNCTION " + renew + " TO " + h.roles.candidate());
                }
                assertThat(advisoryLocksInPool(h.candA, a))
                        .as("advisory locks held by idle pooled connections after "
                                + "the lease connection was given up")
                        .isEmpty();
            } finally {
                a.close();
            }
            assertThat(advisoryLocksInPool(h.candA, null))
                    .as("advisory locks held by pooled connections after " + "PgLease.close()")
                    .isEmpty();
        }
    }

    @Test
    void aStaleTokenFromAFenceEndsAFastFailoverLeadership() throws Exception {
        HostileSchema h = HostileSchema.create();
        String lease = "ff-stale";
        try (PgLease a = PgLease.create(h.as(h.candA), config(h, "holder"));
                Elector ea = a.elector(lease, new Standby())) {
            Leadership l = ea.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            // the holder's renewals fail for now (an error, not a refusal), so that the fence, not a renewal, is the
            // first to meet the token that moved on
            String renew = h.schema + ".renew_all(text, text[], bigint[], bigint)";
            HostileSchema.superuser("REVOKE EXECUTE ON FUNCTION " + renew + " FROM " + h.roles.candidate());
            Throwable t;
            try {
                // the token moved on without the holder hearing of it (no trigger, no notification)
                TestDatabase.execute("SET session_replication_role = replica; UPDATE " + h.schema + ".leases"
                        + " SET token = token + 1, holder = 'someone-else' WHERE name = '" + lease + "'");
                t = catchThrowable(() -> a.inFencedTransaction(l, c -> null));
            } finally {
                HostileSchema.superuser("GRANT EXECUTE ON FUNCTION " + renew + " TO " + h.roles.candidate());
            }
            assertThat(t).isInstanceOf(LeaseException.class);
            assertThat(((LeaseException) t).reason()).isEqualTo(LeaseException.Reason.STALE_TOKEN);
            assertThat(l.isValid())
                    .as("the leadership after its fence found the token moved on (STALE_TOKEN)")
                    .isFalse();
        }
    }

    /** Waits until some session waits for (or holds shared) an advisory lock: the standby watches the holder. */
    private static void awaitStandbyWaiting(HostileSchema h, String lease) {
        Awaitility.await("the standby waits on the holder's session lock")
                .atMost(Duration.ofSeconds(10))
                .until(() -> "t"
                        .equals(HostileSchema.query(
                                null,
                                "SELECT count(*) > 0 FROM pg_locks k JOIN"
                                        + " pg_stat_activity a ON a.pid = k.pid WHERE k.locktype = 'advisory' AND a.usename <> '"
                                        + h.candA + "' AND (NOT k.granted OR k.mode = 'ShareLock')")));
    }

    /** Terminates the backends of {@code login} that hold an advisory lock exclusively: its lease session. */
    private static void terminateLeaseSessionOf(String login) throws Exception {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps =
                        c.prepareStatement("SELECT count(pg_terminate_backend(a.pid)) FROM pg_stat_activity a"
                                + " WHERE a.usename = ? AND EXISTS (SELECT 1 FROM pg_locks k WHERE k.pid = a.pid"
                                + " AND k.locktype = 'advisory' AND k.granted AND k.mode = 'ExclusiveLock')")) {
            ps.setString(1, login);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                assertThat(rs.getInt(1))
                        .as("lease sessions of %s terminated", login)
                        .isPositive();
            }
        }
    }

    /** Advisory locks held by backends of {@code login} that are idle (in the pool), not running a statement. */
    private static List<String> advisoryLocksInPool(String login, PgLease running) throws Exception {
        List<String> out = new java.util.ArrayList<>();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT a.pid, k.mode, a.state FROM pg_locks k"
                        + " JOIN pg_stat_activity a ON a.pid = k.pid WHERE a.usename = ? AND k.locktype = 'advisory'"
                        + " AND k.granted")) {
            ps.setString(1, login);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.add("pid " + rs.getInt(1) + " " + rs.getString(2) + " (" + rs.getString(3) + ")");
                }
            }
        }
        if (running != null && out.stream().map(l -> l.split(" ")[1]).distinct().count() == 1) {
            // the locks of one session may be the running lease connection's own (the lease's lock and the session's
            // own, which its watcher waits on), if it took the lease again: a second session holding one is a leak
            return List.of();
        }
        return out;
    }
}
