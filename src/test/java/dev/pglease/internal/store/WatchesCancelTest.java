package dev.pglease.internal.store;

import static dev.pglease.testkit.Lane.PGBOUNCER_TRANSACTION;
import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.TestDatabase;
import dev.pglease.testkit.InterceptedConnections;
import dev.pglease.testkit.NotInLane;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.UnaryOperator;
import javax.sql.DataSource;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * A cancelled wait ends on the server as well: whenever the cancel comes (before, between or during the wait's
 * statements) no server session stays queued on the lock, and a server out of reach does not hold the wait's thread
 * and connection for the driver's cancel timeout.
 */
@Tag("core")
@NotInLane(
        value = PGBOUNCER_TRANSACTION,
        because =
                "waits on session-level advisory locks need sessions of their own; fast failover is refused behind a transaction pooler")
class WatchesCancelTest {

    /**
     * A wait of two statements, as FastFailoverStore.watchLock runs (lockHeld, then watch): the cancel request reaches
     * the session while it is idle between them (PostgreSQL ignores it) and the blocking statement is sent before the
     * connection is aborted (aborts are delayed here, as a descheduled thread would). The statement that blocks is
     * cancelled all the same.
     */
    @Test
    void aCancelThatReachesTheSessionBetweenTheWaitsStatementsStillEndsTheOneThatBlocks() throws Exception {
        DataSource base = TestDatabase.dataSource();
        int key = 70_000 + (int) (ProcessHandle.current().pid() % 10_000);
        DataSource slowAbort = wrap(base, 300);
        try (Connection holder = base.getConnection();
                Statement s = holder.createStatement()) {
            s.execute("SELECT pg_advisory_lock(" + key + ", 5)");
            Watches watches = new Watches(slowAbort);
            watches.start(
                    "w",
                    "pglease-cancel-two-statements",
                    c -> {
                        try (Statement st = c.createStatement()) {
                            st.execute("SELECT 1"); // lockHeld
                            watches.cancel("w"); // cancelWatch from another thread, at this moment
                            Thread.sleep(100); // the cancel request reaches the idle backend meanwhile
                            st.execute("SELECT pg_advisory_lock_shared(" + key + ", 5)"); // watch
                        } catch (InterruptedException e) {
                            throw new IllegalStateException(e);
                        }
                    },
                    () -> {},
                    () -> {});
            Awaitility.await("no session queued on the lock after the cancel")
                    .atMost(Duration.ofSeconds(5))
                    .until(() -> waiting(holder, key, 5) == 0);
        }
    }

    /** The same race without delays: random gaps of 0-4 ms between the cancel and the statement that blocks. */
    @Test
    void cancelsRacingTheBlockingStatementLeaveNoSessionQueued() throws Exception {
        DataSource base = TestDatabase.dataSource();
        int key = 80_000 + (int) (ProcessHandle.current().pid() % 10_000);
        try (Connection holder = base.getConnection();
                Statement s = holder.createStatement()) {
            s.execute("SELECT pg_advisory_lock(" + key + ", 6)");
            Watches watches = new Watches(base);
            AtomicInteger done = new AtomicInteger();
            int rounds = 100;
            for (int i = 0; i < rounds; i++) {
                String k = "w" + i;
                long spinNanos = ThreadLocalRandom.current().nextLong(0, 4_000_000);
                watches.start(
                        k,
                        "pglease-cancel-many",
                        c -> {
                            try (Statement st = c.createStatement()) {
                                st.execute("SELECT 1");
                                watches.cancel(k);
                                long end = System.nanoTime() + spinNanos;
                                while (System.nanoTime() < end) {
                                    Thread.onSpinWait();
                                }
                                st.execute("SELECT pg_advisory_lock_shared(" + key + ", 6)");
                            } finally {
                                done.incrementAndGet();
                            }
                        },
                        () -> {},
                        () -> {});
                Thread.sleep(10);
            }
            Awaitility.await("every wait ended, and no session queued on the lock after " + rounds + " cancels")
                    .atMost(Duration.ofSeconds(10))
                    .until(() -> done.get() == rounds && waiting(holder, key, 6) == 0);
        }
    }

    /**
     * A wait whose lock was granted just as it was cancelled never goes back to a pool (a cancel request may still reach
     * its connection), and it gives the lock back before it aborts the connection: behind a session pooler the abort
     * frees nothing until the pooler resets the server session, so a lock left to the abort outlives the wait.
     */
    @Test
    void aWaitCancelledAsItsLockIsGrantedGivesTheLockBackBeforeItsConnectionIsAborted() throws Exception {
        DataSource base = TestDatabase.dataSource();
        int key = 75_000 + (int) (ProcessHandle.current().pid() % 10_000);
        AtomicInteger heldAtAbort = new AtomicInteger(-1);
        DataSource watched = countingLocksAtAbort(base, key, 8, heldAtAbort, UnaryOperator.identity());
        try (Connection holder = base.getConnection();
                Statement s = holder.createStatement()) {
            s.execute("SELECT pg_advisory_lock(" + key + ", 8)");
            Watches watches = new Watches(watched);
            watches.start(
                    "w",
                    "pglease-cancel-granted",
                    c -> {
                        try (Statement st = c.createStatement()) {
                            st.execute("SELECT pg_advisory_lock_shared(" + key + ", 8)"); // granted
                        }
                        watches.cancel("w"); // cancelled the moment the wait is over
                    },
                    () -> {},
                    () -> {});
            Awaitility.await("the wait queues")
                    .atMost(Duration.ofSeconds(10))
                    .until(() -> waiting(holder, key, 8) == 1);
            s.execute("SELECT pg_advisory_unlock(" + key + ", 8)");
            Awaitility.await("the wait's thread ends")
                    .atMost(Duration.ofSeconds(10))
                    .until(() -> threads("pglease-cancel-granted") == 0);
            assertThat(heldAtAbort.get())
                    .as("sessions holding the wait's lock when its connection was aborted")
                    .isZero();
        }
    }

    /**
     * A wait cancelled the moment its lock was granted gives the lock back before its connection is aborted, even when
     * a cancel request may reach the session while it does (here the unlock takes 300 ms on the server: a request sent
     * as the wait is cancelled lands in it, unless none is sent once the wait's statement has ended).
     */
    @Test
    void aCancelRequestThatLandsOnTheUnlockOfACancelledWaitStillLeavesNoLockAtTheAbort() throws Exception {
        DataSource base = TestDatabase.dataSource();
        int key = 77_000 + (int) (ProcessHandle.current().pid() % 10_000);
        AtomicInteger heldAtAbort = new AtomicInteger(-1);
        DataSource watched = countingLocksAtAbort(
                base,
                key,
                10,
                heldAtAbort,
                sql -> sql.equals("SELECT pg_advisory_unlock_all()")
                        ? "SELECT pg_advisory_unlock_all() FROM pg_sleep(0.3)"
                        : sql);
        Watches watches = new Watches(watched);
        watches.start(
                "w",
                "pglease-cancel-unlock",
                c -> {
                    try (Statement st = c.createStatement()) {
                        st.execute("SELECT pg_advisory_lock_shared(" + key + ", 10)"); // granted at once
                    }
                    watches.cancel("w"); // cancelled the moment the wait is over
                },
                () -> {},
                () -> {});
        Awaitility.await("the wait's thread ends")
                .atMost(Duration.ofSeconds(10))
                .until(() -> threads("pglease-cancel-unlock") == 0);
        assertThat(heldAtAbort.get())
                .as("sessions holding the wait's lock when its connection was aborted")
                .isZero();
    }

    /**
     * The same when the cancel request reaches the server just as the lock is granted: the statement fails
     * ("canceling statement due to user request") but the session-level lock stays granted, and it is given back
     * before the connection is aborted.
     */
    @Test
    void aWaitCancelledWithAnErrorAfterItsLockWasGrantedGivesTheLockBackBeforeItsConnectionIsAborted()
            throws Exception {
        DataSource base = TestDatabase.dataSource();
        int key = 76_000 + (int) (ProcessHandle.current().pid() % 10_000);
        AtomicInteger heldAtAbort = new AtomicInteger(-1);
        DataSource watched = countingLocksAtAbort(base, key, 9, heldAtAbort, UnaryOperator.identity());
        Watches watches = new Watches(watched);
        watches.start(
                "w",
                "pglease-cancel-granted-error",
                c -> {
                    try (Statement st = c.createStatement()) {
                        st.execute("SELECT pg_advisory_lock_shared(" + key + ", 9)"); // granted at once
                    }
                    watches.cancel("w");
                    throw new SQLException("canceling statement due to user request", "57014");
                },
                () -> {},
                () -> {});
        Awaitility.await("the wait's thread ends")
                .atMost(Duration.ofSeconds(10))
                .until(() -> threads("pglease-cancel-granted-error") == 0);
        assertThat(heldAtAbort.get())
                .as("sessions holding the wait's lock when its connection was aborted")
                .isZero();
    }

    /**
     * The server goes out of reach (a middlebox that accepts and drops) while a wait blocks: its cancel request hangs
     * up to pgjdbc's cancelSignalTimeout (10 s by default), but the wait's connection is aborted and its thread ends
     * well before that.
     */
    @Test
    void aCancelWhileTheServerIsOutOfReachAbortsTheWaitsConnectionWithinThreeSeconds() throws Exception {
        String url = TestDatabase.jdbcUrl();
        java.util.regex.Matcher m =
                java.util.regex.Pattern.compile("//([^:/]+):(\\d+)/").matcher(url);
        assertThat(m.find()).isTrue();
        int pgPort = Integer.parseInt(m.group(2));
        try (BlackholeProxy proxy = new BlackholeProxy(m.group(1), pgPort)) {
            PGSimpleDataSource ds = new PGSimpleDataSource();
            ds.setURL(url.replace("//" + m.group(1) + ":" + pgPort + "/", "//127.0.0.1:" + proxy.port() + "/"));
            DataSource base = TestDatabase.dataSource();
            int key = 90_000 + (int) (ProcessHandle.current().pid() % 10_000);
            try (Connection holder = base.getConnection();
                    Statement s = holder.createStatement()) {
                s.execute("SELECT pg_advisory_lock(" + key + ", 7)");
                Watches watches = new Watches(ds);
                watches.start(
                        "w",
                        "pglease-cancel-out-of-reach",
                        c -> {
                            try (Statement st = c.createStatement()) {
                                st.execute("SELECT pg_advisory_lock_shared(" + key + ", 7)");
                            }
                        },
                        () -> {},
                        () -> {});
                Awaitility.await("the wait queues on the lock")
                        .atMost(Duration.ofSeconds(10))
                        .until(() -> waiting(holder, key, 7) == 1);
                proxy.blackhole = true;
                long t0 = System.nanoTime();
                watches.close();
                while (threads("pglease-cancel-out-of-reach") > 0 && System.nanoTime() - t0 < 15_000_000_000L) {
                    Thread.sleep(50);
                }
                long ms = (System.nanoTime() - t0) / 1_000_000;
                s.execute("SELECT pg_advisory_unlock(" + key + ", 7)");
                assertThat(ms)
                        .as("ms until the cancelled wait's thread ended (connection aborted)")
                        .isLessThan(3000);
            }
        }
    }

    static final class BlackholeProxy implements AutoCloseable {
        final ServerSocket server = new ServerSocket(0, 50, java.net.InetAddress.getLoopbackAddress());
        volatile boolean blackhole;
        final java.util.List<Socket> sockets = new java.util.concurrent.CopyOnWriteArrayList<>();

        BlackholeProxy(String host, int port) throws Exception {
            Thread t = new Thread(() -> {
                while (!server.isClosed()) {
                    try {
                        Socket client = server.accept();
                        sockets.add(client);
                        if (blackhole) {
                            continue; // accepted, never answered nor closed
                        }
                        Socket up = new Socket();
                        up.connect(new InetSocketAddress(host, port));
                        sockets.add(up);
                        pump(client.getInputStream(), up.getOutputStream());
                        pump(up.getInputStream(), client.getOutputStream());
                    } catch (Exception e) {
                        return;
                    }
                }
            });
            t.setDaemon(true);
            t.start();
        }

        void pump(InputStream in, OutputStream out) {
            Thread t = new Thread(() -> {
                byte[] b = new byte[8192];
                try {
                    int n;
                    while ((n = in.read(b)) >= 0) {
                        if (!blackhole) {
                            out.write(b, 0, n);
                            out.flush();
                        }
                    }
                } catch (Exception e) {
                    // ends
                }
            });
            t.setDaemon(true);
            t.start();
        }

        int port() {
            return server.getLocalPort();
        }

        @Override
        public void close() throws Exception {
            server.close();
            for (Socket s : sockets) {
                s.close();
            }
        }
    }

    /**
     * Connections that, at their first abort, count into {@code heldAtAbort} the sessions holding lock ({@code key},
     * {@code key2}), and prepare {@code sql(s)}.
     */
    private static DataSource countingLocksAtAbort(
            DataSource base, int key, int key2, AtomicInteger heldAtAbort, UnaryOperator<String> sql) {
        return new InterceptedConnections(
                base,
                method -> {
                    if (method.equals("abort") && heldAtAbort.get() < 0) {
                        try (Connection look = base.getConnection()) {
                            heldAtAbort.set(granted(look, key, key2));
                        }
                    }
                },
                sql);
    }

    /** Connections whose abort runs {@code delayMillis} late (the cancel thread descheduled before it aborts). */
    static DataSource wrap(DataSource base, long delayMillis) {
        return new InterceptedConnections(base, method -> {
            if (method.equals("abort")) {
                Thread.sleep(delayMillis);
            }
        });
    }

    private static long threads(String name) {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().equals(name) && t.isAlive())
                .count();
    }

    private static int granted(Connection c, int key, int key2) throws Exception {
        return locks(c, key, key2, "granted");
    }

    private static int waiting(Connection c, int key, int key2) throws Exception {
        return locks(c, key, key2, "NOT granted");
    }

    private static int locks(Connection c, int key, int key2, String condition) throws Exception {
        try (PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                + " AND classid = ?::oid AND objsubid = 2 AND objid = ? AND " + condition)) {
            ps.setInt(1, key);
            ps.setInt(2, key2);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }
}
