package dev.pglease;

import static dev.pglease.testkit.Lane.PGBOUNCER_SESSION;
import static dev.pglease.testkit.Lane.PGBOUNCER_TRANSACTION;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.internal.election.Grant;
import dev.pglease.internal.sql.FastFailoverStatements;
import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.store.LeaseStore;
import dev.pglease.testkit.NotInLane;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Crash takeover ({@link LeaseConfig.Builder#fastFailover}): a standby takes an unexpired lease at once, with the next
 * token, when the holder's database session ends, and never while that session is alive.
 */
@Tag("core")
@NotInLane(
        value = PGBOUNCER_TRANSACTION,
        because = "fast failover needs session-level advisory locks held on one server session, which "
                + "transaction pooling does not give: pglease refuses the mode there at start "
                + "(UNSUPPORTED_POOLING)")
class FastFailoverTest {

    private static String schema;
    private static LeaseStatements sql;
    private static FastFailoverStatements failover;

    @BeforeAll
    static void migrate() {
        schema = TestDatabase.freshSchema();
        sql = new LeaseStatements(schema);
        failover = new FastFailoverStatements(schema);
    }

    /** 30 s leases: anything that happens within a few seconds did not wait for an expiry. */
    static LeaseConfig config(String label, boolean fastFailover) {
        return config(label, fastFailover, LeaseObserver.NONE);
    }

    static LeaseConfig config(String label, boolean fastFailover, LeaseObserver observer) {
        return LeaseConfig.builder()
                .schema(schema)
                .holderLabel(label)
                .fastFailover(fastFailover)
                .leaseDuration(Duration.ofSeconds(30))
                .renewDeadline(Duration.ofSeconds(20))
                .retryPeriod(Duration.ofMillis(500))
                .observer(observer)
                .build();
    }

    /**
     * Once armed, stops the process's election thread at its next observation (a crashed process does nothing more;
     * without this, a holder whose session alone was ended may campaign again on a new connection and win the race
     * against the standby it should leave the lease to). Let go at the end of the test.
     */
    static final class Crash implements LeaseObserver {
        private volatile boolean armed;
        private final java.util.concurrent.CountDownLatch end = new java.util.concurrent.CountDownLatch(1);

        void arm() {
            armed = true;
        }

        void end() {
            end.countDown();
        }

        private void halt() {
            if (armed && Thread.currentThread().getName().startsWith("pglease-election")) {
                try {
                    end.await(60, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }

        @Override
        public void acquireAttempted(String leaseName, boolean granted, long token, Duration latency) {
            halt();
        }

        @Override
        public void renewed(String leaseName, long token, Duration latency) {
            halt();
        }

        @Override
        public void renewFailed(String leaseName, long token, boolean lost, Throwable cause) {
            halt();
        }

        @Override
        public void databaseError(String leaseName, Throwable cause) {
            halt();
        }

        @Override
        public void released(String leaseName, long token) {
            halt();
        }
    }

    @Test
    void offByDefault() {
        assertThat(LeaseConfig.defaults().fastFailover()).isFalse();
        assertThat(LeaseConfig.builder().fastFailover(true).build().toString()).contains("fastFailover=true");
    }

    @Test
    void whenTheHoldersSessionIsTerminatedAStandbyTakesOverAtOnceAndTheOldHoldersWritesAreRefused() throws Exception {
        String lease = "crash-" + System.nanoTime();
        ElectorTest.Recorder aEvents = new ElectorTest.Recorder();
        ElectorTest.Recorder bEvents = new ElectorTest.Recorder();
        Crash crash = new Crash();
        try (PgLease a = PgLease.create(TestDatabase.dataSource(), config("a", true, crash));
                PgLease b = PgLease.create(TestDatabase.dataSource(), config("b", true));
                Elector ea = a.elector(lease, aEvents)) {
            Leadership first = ea.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            try (Elector eb = b.elector(lease, bEvents)) {
                awaitWatcher(lease);
                assertThat(eb.isLeader()).isFalse();

                long killedAt = System.nanoTime();
                crash.arm();
                terminateLockHolder(lease);
                String elected = bEvents.next();
                long tookMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killedAt);

                assertThat(elected).isEqualTo("elected " + (first.token() + 1));
                assertThat(tookMillis)
                        .as("takeover after the session ended, with a 30 s lease")
                        .isLessThan(5_000);
                // The old holder stopped leading when its session ended (its deadline is 20 s away), and the
                // database refuses its token anyway: a fence with it, as if the holder had not noticed, is refused.
                assertThat(first.isValid()).as("the old holder's leadership").isFalse();
                Leadership unnoticed = new Grant(
                        lease, first.holder(), first.token(), Ticker.SYSTEM, System.nanoTime() + 20_000_000_000L);
                assertThatThrownBy(() -> a.inFencedTransaction(unnoticed, c -> {
                            try (PreparedStatement ps = c.prepareStatement("SELECT 1")) {
                                ps.execute();
                            }
                            return null;
                        }))
                        .isInstanceOfSatisfying(
                                LeaseException.class,
                                e -> assertThat(e.reason()).isEqualTo(LeaseException.Reason.STALE_TOKEN));
                // It stepped down at once, long before its local deadline.
                assertThat(aEvents.next()).isEqualTo("elected " + first.token());
                assertThat(aEvents.next()).isEqualTo("revoked " + first.token() + " valid=false");
                assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - killedAt))
                        .as("the cut-off holder stepped down well before its 20 s deadline")
                        .isLessThan(10_000);
                assertThat(eb.isLeader()).isTrue();
            } finally {
                crash.end();
            }
        }
    }

    @Test
    @NotInLane(
            value = PGBOUNCER_SESSION,
            because = "ends the holder's session by closing its client connection; behind a session pooler "
                    + "the server session outlives it (PgBouncer keeps it for its next client, after DISCARD "
                    + "ALL has freed its advisory lock), so the database rightly refuses the takeover until "
                    + "the lease expires")
    void aLiveHolderIsNeverTakenOverAndAPlainHolderOnlyWhenItsLeaseExpires() throws Exception {
        String lease = "alive-" + System.nanoTime();
        try (Connection holder = TestDatabase.dataSource().getConnection();
                Connection standby = TestDatabase.dataSource().getConnection()) {
            // A fast-failover holder: lock, acquire, register; then it stops renewing but its session lives (a pause).
            assertThat(failover.lock(holder, lease, 0)).isTrue();
            LeaseStore.Acquired granted = sql.acquire(holder, lease, "holder-1", Duration.ofSeconds(30));
            assertThat(granted.granted()).isTrue();
            assertThat(failover.register(holder, lease, "holder-1", granted.token()))
                    .isTrue();

            assertThat(failover.lock(standby, lease, 50))
                    .as("the holder's session holds the lock")
                    .isFalse();
            assertThat(failover.takeOverEndedSession(standby, lease, "standby-1", Duration.ofSeconds(30)))
                    .isEmpty();
            assertThat(failover.register(standby, lease, "standby-1", granted.token()))
                    .as("only the holder can register its grant")
                    .isFalse();

            holder.close();
            assertThat(failover.lock(standby, lease, 5_000))
                    .as("freed when the session ended")
                    .isTrue();
            assertThat(failover.takeOverEndedSession(standby, lease, "standby-1", Duration.ofSeconds(30)))
                    .contains(granted.token() + 1);
            assertThat(failover.takeOverEndedSession(standby, lease, "standby-2", Duration.ofSeconds(30)))
                    .as("the new grant is not registered, and its holder is alive")
                    .isEmpty();
        }
        String plain = "plain-" + System.nanoTime();
        try (Connection holder = TestDatabase.dataSource().getConnection();
                Connection standby = TestDatabase.dataSource().getConnection()) {
            // A holder without fast failover never registers: its lease must expire first.
            assertThat(sql.acquire(holder, plain, "plain-1", Duration.ofSeconds(30))
                            .granted())
                    .isTrue();
            holder.close();
            assertThat(failover.lock(standby, plain, 0)).isTrue();
            assertThat(failover.takeOverEndedSession(standby, plain, "standby-1", Duration.ofSeconds(30)))
                    .isEmpty();
            assertThat(sql.acquire(standby, plain, "standby-1", Duration.ofSeconds(30))
                            .granted())
                    .isFalse();
        }
    }

    @Test
    void aRegisteredSessionThatLivesOnWithoutTheLeasesLockIsTakenOverAsASessionPoolerLeavesIt() throws Exception {
        String lease = "pooled-" + System.nanoTime();
        try (Connection holder = TestDatabase.dataSource().getConnection();
                Connection standby = TestDatabase.dataSource().getConnection()) {
            assertThat(failover.lock(holder, lease, 0)).isTrue();
            LeaseStore.Acquired granted = sql.acquire(holder, lease, "holder-1", Duration.ofSeconds(30));
            assertThat(granted.granted()).isTrue();
            assertThat(failover.register(holder, lease, "holder-1", granted.token()))
                    .isTrue();
            // What a session pooler does to the server session of a client that died: DISCARD ALL frees its locks.
            try (Statement s = holder.createStatement()) {
                s.execute("DISCARD ALL");
            }
            assertThat(failover.lock(standby, lease, 5_000)).isTrue();
            assertThat(failover.takeOverEndedSession(standby, lease, "standby-1", Duration.ofSeconds(30)))
                    .as("the registered backend lives on, but without the lease's lock it is no longer the holder's")
                    .contains(granted.token() + 1);
        }
    }

    @Test
    void aGracefulHandoffIsImmediateAndItsSuccessorIsTakenOverAtOnceWhenItsSessionEnds() throws Exception {
        String lease = "graceful-" + System.nanoTime();
        ElectorTest.Recorder bEvents = new ElectorTest.Recorder();
        Crash crash = new Crash();
        try (PgLease a = PgLease.create(TestDatabase.dataSource(), config("a", true));
                PgLease b = PgLease.create(TestDatabase.dataSource(), config("b", true, crash))) {
            Elector ea = a.elector(lease, new ElectorTest.Recorder());
            Leadership first = ea.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            try (Elector eb = b.elector(lease, bEvents)) {
                awaitWatcher(lease);
                ea.close();
                assertThat(bEvents.next()).isEqualTo("elected " + (first.token() + 1));
                // The successor of a graceful handoff is protected the same way: its crash is taken over at once.
                ElectorTest.Recorder cEvents = new ElectorTest.Recorder();
                try (PgLease c = PgLease.create(TestDatabase.dataSource(), config("c", true));
                        Elector ec = c.elector(lease, cEvents)) {
                    awaitWatcher(lease);
                    crash.arm();
                    terminateLockHolder(lease);
                    assertThat(cEvents.next()).isEqualTo("elected " + (first.token() + 2));
                }
            } finally {
                crash.end();
            }
        }
    }

    /** Waits until a standby waits for the lease's lock on its watch connection. */
    private static void awaitWatcher(String lease) throws Exception {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (System.nanoTime() < until) {
            if (count(lease, "NOT k.granted AND k.mode = 'ShareLock'") > 0) {
                return;
            }
            Thread.sleep(10);
        }
        throw new AssertionError("no standby waits for the lock of lease " + lease);
    }

    private static int count(String lease, String condition) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement(lockQuery("count(*)", condition))) {
            ps.setString(1, lease);
            ps.setString(2, lease);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }

    private static String lockQuery(String select, String condition) {
        return "SELECT " + select + " FROM pg_locks k WHERE k.locktype = 'advisory' AND " + condition
                + " AND k.classid::bigint = (" + schema + ".fast_failover_key(?) >> 32) & 4294967295"
                + " AND k.objid::bigint = " + schema + ".fast_failover_key(?) & 4294967295";
    }

    /** Ends the holder's lease connection on the server, as a crash of its process would. */
    private static void terminateLockHolder(String lease) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement(
                        lockQuery("pg_terminate_backend(k.pid)", "k.granted AND k.mode = 'ExclusiveLock'"))) {
            ps.setString(1, lease);
            ps.setString(2, lease);
            try (ResultSet rs = ps.executeQuery()) {
                assertThat(rs.next())
                        .as("the holder's session holds the lease's lock")
                        .isTrue();
                assertThat(rs.getBoolean(1)).isTrue();
            }
        }
    }
}
