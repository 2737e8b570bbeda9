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
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * {@code fast_failover_lock(name, wait)} waits for the lease's advisory lock at most {@code wait} ms. When the lock is
 * freed just as that wait runs out, the server may grant the lock and still end the statement with its lock timeout:
 * the lock is a session lock, so it stays. The function must then say it was taken; saying it was not would leave a
 * candidate holding the lock it goes on to wait for (its own watch waits on it until the lease expires).
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
