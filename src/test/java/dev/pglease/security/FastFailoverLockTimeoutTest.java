package dev.pglease.security;

import static dev.pglease.testkit.Lane.PGBOUNCER_TRANSACTION;
import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.TestDatabase;
import dev.pglease.testkit.NotInLane;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * {@code fast_failover_lock(name, wait)} waits for the lease's advisory lock at most {@code wait} ms. When the lock is
 * freed just as that wait runs out, the server may grant the lock and still end the statement with its lock timeout:
 * the lock is a session lock, so it stays. The function must then say it was taken; saying it was not would leave a
 * candidate holding the lock it goes on to wait for (its own watch waits on it until the lease expires). A wait
 * that the server ends as a deadlock is a lock not taken too.
 */
@Tag("security")
@NotInLane(
        value = PGBOUNCER_TRANSACTION,
        because = "holds session-level advisory locks across statements, which transaction pooling does not keep on"
                + " one server session (fast failover is refused there at start)")
class FastFailoverLockTimeoutTest {

    @Test
    void aLockFreedAsTheWaitRunsOutIsReportedAsTakenWhenTheSessionHoldsIt() throws Exception {
        String schema = TestDatabase.freshSchema();
        int mismatches = 0;
        int notTaken = 0;
        try (Connection holder = TestDatabase.dataSource().getConnection();
                Connection candidate = TestDatabase.dataSource().getConnection()) {
            for (int i = 0; i < 300; i++) {
                String name = "timeout-" + i;
                value(holder, "SELECT pg_advisory_lock(" + schema + ".fast_failover_key('" + name + "'))");
                long releaseAfterNanos = 4_000_000L + (i % 40) * 50_000L; // 4.0 to 6.0 ms, around the 5 ms wait
                Thread releaser = new Thread(() -> {
                    LockSupport.parkNanos(releaseAfterNanos);
                    try {
                        value(holder, "SELECT pg_advisory_unlock_all()");
                    } catch (SQLException e) {
                        throw new IllegalStateException(e);
                    }
                });
                releaser.start();
                boolean taken =
                        "t".equals(value(candidate, "SELECT " + schema + ".fast_failover_lock('" + name + "', 5)"));
                releaser.join();
                boolean held = heldBy(candidate, schema, name);
                if (!taken) {
                    notTaken++;
                }
                if (taken != held) {
                    mismatches++;
                }
                value(candidate, "SELECT pg_advisory_unlock_all()");
            }
        }
        assertThat(notTaken)
                .as("waits that ran out before the lock was freed (the race needs some)")
                .isPositive();
        assertThat(mismatches)
                .as("calls, of 300, whose answer differs from whether the session holds the lock")
                .isZero();
    }

    /**
     * The key of a lease's lock has 32 bits of the lease name, so two names can share it: a session that leads one and
     * takes the other's lock must hold it twice, so that giving the second back leaves the first held (else a standby
     * of the first would find its holder's session without the lock, and take over a live holder).
     */
    @Test
    void takingTheLockAgainInTheSessionThatHoldsItHoldsItTwiceSoOneUnlockLeavesItHeld() throws Exception {
        String schema = TestDatabase.freshSchema();
        try (Connection candidate = TestDatabase.dataSource().getConnection()) {
            for (int wait : new int[] {0, 5}) {
                String name = "again-" + wait;
                String lock = "SELECT " + schema + ".fast_failover_lock('" + name + "', " + wait + ")";
                String unlock = "SELECT pg_advisory_unlock(" + schema + ".fast_failover_key('" + name + "'))";
                assertThat(value(candidate, lock)).isEqualTo("t");
                assertThat(value(candidate, lock))
                        .as("taken again by the session that holds it")
                        .isEqualTo("t");
                assertThat(value(candidate, unlock)).isEqualTo("t");
                assertThat(heldBy(candidate, schema, name))
                        .as("held after one of two unlocks (wait %d ms)", wait)
                        .isTrue();
                assertThat(value(candidate, unlock)).isEqualTo("t");
                assertThat(heldBy(candidate, schema, name))
                        .as("held after both unlocks (wait %d ms)", wait)
                        .isFalse();
            }
        }
    }

    /**
     * Two candidates, each holding one lease's lock and standing by for the other's, wait on each other. With a
     * {@code deadlock_timeout} shorter than their waits (a DBA's setting), the server ends one wait with
     * {@code deadlock_detected}: that is a lock not taken, answered as such, not an error that fails the caller's
     * statement (and with it the lease connection's turn).
     */
    @Test
    void aDeadlockWhileWaitingIsAnsweredAsNotTakenInsteadOfFailingTheStatement() throws Exception {
        String schema = TestDatabase.freshSchema();
        try (Connection a = TestDatabase.dataSource().getConnection();
                Connection b = TestDatabase.dataSource().getConnection()) {
            execute(a, "SET deadlock_timeout = '5ms'");
            execute(b, "SET deadlock_timeout = '5ms'");
            assertThat(value(a, "SELECT " + schema + ".fast_failover_lock('one', 0)"))
                    .isEqualTo("t");
            assertThat(value(b, "SELECT " + schema + ".fast_failover_lock('two', 0)"))
                    .isEqualTo("t");
            String aPid = value(a, "SELECT pg_backend_pid()");
            CompletableFuture<String> aWaits = CompletableFuture.supplyAsync(() -> {
                try {
                    return value(a, "SELECT " + schema + ".fast_failover_lock('two', 5000)");
                } catch (SQLException e) {
                    return "error " + e.getSQLState();
                }
            });
            long until = System.nanoTime() + 5_000_000_000L;
            while (!"t"
                    .equals(value(
                            b,
                            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                                    + " AND NOT granted AND pid = " + aPid + ")"))) {
                assertThat(System.nanoTime()).as("a waits for the lock b holds").isLessThan(until);
                Thread.sleep(1);
            }
            // a's one deadlock check (5 ms into its wait) has passed, finding no cycle: b's wait is the one that finds
            // it
            Thread.sleep(50);
            String bAnswer;
            try {
                bAnswer = value(b, "SELECT " + schema + ".fast_failover_lock('one', 5000)");
            } catch (SQLException e) {
                bAnswer = "error " + e.getSQLState();
            }
            boolean bHolds = heldBy(b, schema, "one");
            execute(b, "SELECT pg_advisory_unlock_all()");
            String aAnswer = aWaits.get(10, TimeUnit.SECONDS);
            assertThat(bAnswer)
                    .as("the answer of the wait that closed the cycle (40P01 is deadlock_detected)")
                    .isEqualTo("f");
            assertThat(bHolds).isFalse();
            assertThat(aAnswer).as("the other wait, once b let its lock go").isEqualTo("t");
            assertThat(heldBy(a, schema, "two")).isTrue();
        }
    }

    private static void execute(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement()) {
            st.execute(sql);
        }
    }

    private static boolean heldBy(Connection c, String schema, String name) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT EXISTS (SELECT 1 FROM pg_locks k, (SELECT " + schema
                + ".fast_failover_key(?) AS key) f WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 1"
                + " AND k.pid = pg_backend_pid() AND k.classid::bigint = (f.key >> 32) & 4294967295"
                + " AND k.objid::bigint = f.key & 4294967295)")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    private static String value(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement();
                ResultSet rs = st.executeQuery(sql)) {
            return rs.next() ? rs.getString(1) : null;
        }
    }
}
