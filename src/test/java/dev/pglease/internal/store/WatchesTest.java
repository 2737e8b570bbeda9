package dev.pglease.internal.store;

import static dev.pglease.testkit.Lane.PGBOUNCER_SESSION;
import static dev.pglease.testkit.Lane.PGBOUNCER_TRANSACTION;
import static org.assertj.core.api.Assertions.assertThat;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.pglease.TestDatabase;
import dev.pglease.internal.sql.FastFailoverStatements;
import dev.pglease.testkit.NotInLane;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import javax.sql.DataSource;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The blocking waits of fast failover leave nothing behind: a wait started while the watches close is aborted (no
 * thread and no connection stays blocked on the lock), and a connection whose wait was granted gives the lock back
 * before it returns to its pool, with its settings as they were.
 */
@Tag("core")
@NotInLane(
        value = PGBOUNCER_TRANSACTION,
        because =
                "waits on session-level advisory locks need sessions of their own; fast failover is refused behind a transaction pooler")
class WatchesTest {

    private static final FastFailoverStatements SQL = new FastFailoverStatements("pglease");

    @Test
    void waitsStartedWhileTheWatchesCloseLeaveNoThreadAndNoConnectionBlocked() throws Exception {
        DataSource ds = TestDatabase.dataSource();
        int key = 40_000 + (int) (ProcessHandle.current().pid() % 10_000);
        try (Connection holder = ds.getConnection();
                Statement s = holder.createStatement()) {
            s.execute("SELECT pg_advisory_lock(" + key + ", 1)");
            for (int round = 0; round < 20; round++) {
                Watches watches = new Watches(ds);
                CountDownLatch go = new CountDownLatch(1);
                List<Thread> racers = new ArrayList<>();
                for (int i = 0; i < 4; i++) {
                    String name = "wait " + i;
                    racers.add(new Thread(() -> {
                        await(go);
                        watches.start(
                                name, "pglease-watch-race", c -> SQL.awaitSessionEnd(c, key, 1), () -> {}, () -> {});
                    }));
                }
                racers.add(new Thread(() -> {
                    await(go);
                    watches.close();
                }));
                racers.forEach(Thread::start);
                go.countDown();
                for (Thread t : racers) {
                    t.join();
                }
            }
            Awaitility.await("no wait left")
                    .atMost(Duration.ofSeconds(10))
                    .until(() -> threads("pglease-watch-race") == 0 && waiting(holder, key) == 0);
        }
    }

    @Test
    void aWaitCancelledWhileItsStatementBlocksLeavesNoSessionWaitingOnTheServer() throws Exception {
        DataSource ds = TestDatabase.dataSource();
        int key = 60_000 + (int) (ProcessHandle.current().pid() % 10_000);
        try (Connection holder = ds.getConnection();
                Statement s = holder.createStatement()) {
            s.execute("SELECT pg_advisory_lock(" + key + ", 3)");
            Watches watches = new Watches(ds);
            watches.start("blocked", "pglease-watch-cancel", c -> SQL.awaitSessionEnd(c, key, 3), () -> {}, () -> {});
            Awaitility.await("the wait blocks")
                    .atMost(Duration.ofSeconds(10))
                    .until(() -> waiting(holder, key, 3) == 1);
            watches.close();
            Awaitility.await("no session left waiting on the server")
                    .atMost(Duration.ofSeconds(5))
                    .until(() -> threads("pglease-watch-cancel") == 0 && waiting(holder, key, 3) == 0);
        }
    }

    @Test
    @NotInLane(
            value = {PGBOUNCER_TRANSACTION, PGBOUNCER_SESSION},
            because =
                    "sets session settings with the JDBC startup parameter options, which PgBouncer 1.18 refuses (FATAL: unsupported startup parameter: options)")
    void aGrantedWaitGivesTheLockBackBeforeItsConnectionReturnsToThePool() throws Exception {
        int key = 50_000 + (int) (ProcessHandle.current().pid() % 10_000);
        HikariConfig hc = new HikariConfig();
        String url = TestDatabase.jdbcUrl();
        // a role-like default the wait overrides: it must be back when the connection is reused
        hc.setJdbcUrl(url + (url.contains("?") ? "&" : "?") + "options=-c%20lock_timeout%3D7s");
        hc.setMaximumPoolSize(2);
        try (HikariDataSource pool = new HikariDataSource(hc);
                Connection holder = TestDatabase.dataSource().getConnection();
                Statement s = holder.createStatement()) {
            s.execute("SELECT pg_advisory_lock(" + key + ", 2)");
            Watches watches = new Watches(pool);
            CountDownLatch granted = new CountDownLatch(1);
            watches.start(
                    "session", "pglease-watch-pool", c -> SQL.awaitSessionEnd(c, key, 2), granted::countDown, () -> {});
            Awaitility.await("the wait blocks").atMost(Duration.ofSeconds(10)).until(() -> waiting(holder, key) == 1);
            s.execute("SELECT pg_advisory_unlock(" + key + ", 2)");
            assertThat(granted.await(10, java.util.concurrent.TimeUnit.SECONDS)).isTrue();
            Awaitility.await("the wait is over")
                    .atMost(Duration.ofSeconds(10))
                    .until(() -> !watches.running("session"));
            assertThat(held(holder, key))
                    .as("sessions holding the lock after the wait")
                    .isZero();
            try (Connection reused = pool.getConnection();
                    PreparedStatement ps = reused.prepareStatement("SELECT current_setting('lock_timeout')");
                    ResultSet rs = ps.executeQuery()) {
                rs.next();
                assertThat(rs.getString(1))
                        .as("lock_timeout of a pooled connection after a wait")
                        .isEqualTo("7s");
            }
            watches.close();
        }
    }

    private static void await(CountDownLatch go) {
        try {
            go.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static long threads(String name) {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().equals(name) && t.isAlive())
                .count();
    }

    private static int waiting(Connection c, int key) throws Exception {
        return count(c, "NOT granted", key);
    }

    private static int waiting(Connection c, int key, int key2) throws Exception {
        return count(c, "NOT granted AND objid = " + key2, key);
    }

    private static int held(Connection c, int key) throws Exception {
        return count(c, "granted", key);
    }

    private static int count(Connection c, String condition, int key) throws Exception {
        try (PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                + " AND classid = ?::oid AND objsubid = 2 AND " + condition)) {
            ps.setInt(1, key);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }
}
