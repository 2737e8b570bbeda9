package dev.pglease.internal.store;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.TestDatabase;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Logger;
import javax.sql.DataSource;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/** Attack on Watches.cancel (commits 938d410, 42efef1). */
class WatchesCancelAttackTest {

    /**
     * A wait of two statements, as FastFailoverStore.watchLock runs (lockHeld, then watch). The cancel request arrives
     * while the backend is idle between them (discarded by PostgreSQL), the blocking statement is sent before the
     * background thread aborts the connection: the aborted session stays queued on the lock. The abort is delayed here
     * (a cancel thread descheduled between cancelQuery and abort) to make the interleaving deterministic.
     */
    @Test
    void aCancelThatLandsBetweenTheWaitsStatementsLeavesASessionQueued() throws Exception {
        DataSource base = TestDatabase.dataSource();
        int key = 70_000 + (int) (ProcessHandle.current().pid() % 10_000);
        DataSource slowAbort = wrap(base, 300);
        try (Connection holder = base.getConnection();
                Statement s = holder.createStatement()) {
            s.execute("SELECT pg_advisory_lock(" + key + ", 5)");
            Watches watches = new Watches(slowAbort);
            watches.start(
                    "w",
                    "pglease-attack-two-statements",
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
            Thread.sleep(3000);
            assertThat(waiting(holder, key, 5))
                    .as("server sessions still queued on the lock after cancel")
                    .isZero();
        }
    }

    /** The same race without any delay or wrapper: random gaps between cancel and the blocking statement. */
    @Test
    void manyCancelsWithoutInjectedDelays() throws Exception {
        DataSource base = TestDatabase.dataSource();
        int key = 80_000 + (int) (ProcessHandle.current().pid() % 10_000);
        try (Connection holder = base.getConnection();
                Statement s = holder.createStatement()) {
            s.execute("SELECT pg_advisory_lock(" + key + ", 6)");
            Watches watches = new Watches(base);
            AtomicInteger done = new AtomicInteger();
            int rounds = 300;
            for (int i = 0; i < rounds; i++) {
                String k = "w" + i;
                long spinNanos = ThreadLocalRandom.current().nextLong(0, 4_000_000);
                watches.start(
                        k,
                        "pglease-attack-many",
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
            Thread.sleep(3000);
            System.out.println("ATTACK many: rounds=" + rounds + " leakedQueued=" + waiting(holder, key, 6));
            assertThat(waiting(holder, key, 6))
                    .as("server sessions still queued after %d cancels", rounds)
                    .isZero();
        }
    }

    /**
     * The server becomes unreachable (a network partition: a middlebox accepts and drops) while a wait blocks. Before
     * the change, cancel aborted the connection at once and the wait's thread ended; now the abort waits for the
     * cancel request, up to pgjdbc's cancelSignalTimeout (10 s by default, unbounded with 0).
     */
    @Test
    void aCancelWhileTheServerIsUnreachableLeavesTheWaitAndItsConnectionFor10s() throws Exception {
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
                        "pglease-attack-partition",
                        c -> {
                            try (Statement st = c.createStatement()) {
                                st.execute("SELECT pg_advisory_lock_shared(" + key + ", 7)");
                            }
                        },
                        () -> {},
                        () -> {});
                long deadline = System.currentTimeMillis() + 10_000;
                while (waiting(holder, key, 7) == 0 && System.currentTimeMillis() < deadline) {
                    Thread.sleep(20);
                }
                proxy.blackhole = true;
                long t0 = System.nanoTime();
                watches.close();
                while (threads("pglease-attack-partition") > 0 && System.nanoTime() - t0 < 15_000_000_000L) {
                    Thread.sleep(50);
                }
                long ms = (System.nanoTime() - t0) / 1_000_000;
                System.out.println("ATTACK partition: the wait's thread ended " + ms + " ms after close()");
                s.execute("SELECT pg_advisory_unlock(" + key + ", 7)");
                assertThat(ms)
                        .as("ms until the cancelled wait's thread ended (connection aborted)")
                        .isLessThan(2000);
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

    /** Connections whose abort runs {@code delayMillis} late (the cancel thread descheduled before it aborts). */
    static DataSource wrap(DataSource base, long delayMillis) {
        return new DataSource() {
            @Override
            public Connection getConnection() throws SQLException {
                Connection real = base.getConnection();
                return (Connection) Proxy.newProxyInstance(
                        Connection.class.getClassLoader(), new Class<?>[] {Connection.class}, (p, m, a) -> {
                            if (m.getName().equals("abort")) {
                                Thread.sleep(delayMillis);
                            }
                            try {
                                return m.invoke(real, a);
                            } catch (InvocationTargetException e) {
                                throw e.getCause();
                            }
                        });
            }

            @Override
            public Connection getConnection(String u, String p) throws SQLException {
                throw new SQLException("unused");
            }

            @Override
            public PrintWriter getLogWriter() {
                return null;
            }

            @Override
            public void setLogWriter(PrintWriter out) {}

            @Override
            public void setLoginTimeout(int seconds) {}

            @Override
            public int getLoginTimeout() {
                return 0;
            }

            @Override
            public Logger getParentLogger() {
                return null;
            }

            @Override
            public <T> T unwrap(Class<T> iface) throws SQLException {
                throw new SQLException("unused");
            }

            @Override
            public boolean isWrapperFor(Class<?> iface) {
                return false;
            }
        };
    }

    private static long threads(String name) {
        return Thread.getAllStackTraces().keySet().stream()
                .filter(t -> t.getName().equals(name) && t.isAlive())
                .count();
    }

    private static int waiting(Connection c, int key, int key2) throws Exception {
        try (PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                + " AND classid = ?::oid AND objsubid = 2 AND NOT granted AND objid = " + key2)) {
            ps.setInt(1, key);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }
}
