package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.internal.store.StartupChecks;
import dev.pglease.internal.tool.EmbeddedPostgresServer;
import dev.pglease.pgbouncer.PgBouncer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import javax.sql.DataSource;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * A transaction pooler the start-up check does not recognise. The README promises that behind PgBouncer in
 * {@code pool_mode=transaction} pglease "never LISTENs through the pooler", runs its lease statements with their
 * settings in their own transactions, and refuses fast failover at start ("Not behind a transaction pooler (refused
 * at start)").
 *
 * <p>The check takes two client connections and asks each for {@code pg_backend_pid()} a few times, expecting a
 * transaction pooler to hand the most recently used server connection out first. PgBouncer with
 * {@code server_round_robin = 1} hands the least recently used one out instead; with two server connections in the
 * pool the two clients are then served alternately by the same two backends, exactly as two sessions would be, and
 * the pooler passes for a direct connection. Then pglease LISTENs through it, sets its lease session's settings on
 * whichever server connection served that statement (where they stay for the pooler's next client), and takes
 * session advisory locks for fast failover through it.
 */
class RoundRobinTransactionPoolerTest {

    private static EmbeddedPostgresServer server;
    private static Bouncer bouncer;
    private static String schema;

    @BeforeAll
    static void start() {
        Required.assume(PgBouncer.installed(), PgBouncer.BINARY + " (Debian package pgbouncer)");
        server = EmbeddedPostgresServer.start();
        bouncer = Bouncer.start(server.port(), "server_round_robin = 1");
        schema = "rr_" + ProcessHandle.current().pid();
        PgLease.migrate(dataSource(server.jdbcUrl()), schema);
    }

    @AfterAll
    static void stop() {
        if (bouncer != null) {
            bouncer.close();
        }
        if (server != null) {
            server.close();
        }
    }

    /** Both server connections of the pool exist and are idle, as in any pool that has served some traffic. */
    @BeforeEach
    void warmThePool() throws Exception {
        try (Connection a = pooled().getConnection();
                Connection b = pooled().getConnection()) {
            a.setAutoCommit(false);
            b.setAutoCommit(false);
            Set<Integer> backends = new LinkedHashSet<>(List.of(pid(a), pid(b)));
            a.commit();
            b.commit();
            assertThat(backends).as("two server connections serve the pool").hasSize(2);
        }
    }

    @Test
    void fastFailoverIsRefusedAtStartBehindATransactionPooler() {
        Throwable t = catchThrowable(() -> {
            try (PgLease pglease =
                    PgLease.create(pooled(), config().fastFailover(true).build())) {
                // started
            }
        });
        assertThat(t)
                .as("PgLease.create with fastFailover through PgBouncer in pool_mode=transaction")
                .isInstanceOf(LeaseException.class);
        assertThat(((LeaseException) t).reason()).isEqualTo(LeaseException.Reason.UNSUPPORTED_POOLING);
    }

    @Test
    void pgleaseNeverListensThroughATransactionPooler() {
        try (PgLease pglease = PgLease.create(pooled(), config().build())) {
            assertThat(pglease.notificationMode())
                    .as("how standbys behind a transaction pooler (no direct data source) learn of a release")
                    .isEqualTo(StartupChecks.NotificationMode.POLLING);
        }
    }

    @Test
    void theLeaseSessionsSettingsDoNotStayOnTheServerConnectionsOtherClientsOfThePoolerGet() throws Exception {
        try (PgLease pglease = PgLease.create(pooled(), config().build())) {
            List<String> seen = new ArrayList<>();
            try (Connection other = pooled().getConnection()) {
                for (int i = 0; i < 4; i++) { // every server connection of the pool, in turn
                    try (Statement s = other.createStatement();
                            ResultSet rs = s.executeQuery("SELECT current_setting('statement_timeout')")) {
                        rs.next();
                        seen.add(rs.getString(1));
                    }
                }
            }
            assertThat(seen)
                    .as("statement_timeout as another application of the same pooler sees it")
                    .containsOnly("0");
        }
    }

    private static LeaseConfig.Builder config() {
        return LeaseConfig.builder()
                .schema(schema)
                .leaseDuration(Duration.ofSeconds(4))
                .renewDeadline(Duration.ofSeconds(3))
                .retryPeriod(Duration.ofSeconds(1));
    }

    private static int pid(Connection c) throws Exception {
        try (Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT pg_backend_pid()")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    private static DataSource pooled() {
        return dataSource(bouncer.jdbcUrl());
    }

    private static DataSource dataSource(String url) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL(url);
        ds.setConnectTimeout(5);
        ds.setLoginTimeout(5);
        return ds;
    }

    /** PgBouncer in pool_mode=transaction with two server connections and extra settings, stopped by its PID. */
    private static final class Bouncer implements AutoCloseable {
        private final Process process;
        private final int port;

        private Bouncer(Process process, int port) {
            this.process = process;
            this.port = port;
        }

        static Bouncer start(int serverPort, String... extra) {
            try {
                int port;
                try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
                    port = s.getLocalPort();
                }
                Path dir = Files.createTempDirectory(
                        "pglease-rr-bouncer-",
                        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwxr-xr-x")));
                Path users = dir.resolve("users.txt");
                Files.writeString(users, "\"postgres\" \"\"\n");
                List<String> ini = new ArrayList<>(List.of(
                        "[databases]",
                        "* = host=127.0.0.1 port=" + serverPort,
                        "[pgbouncer]",
                        "listen_addr = 127.0.0.1",
                        "listen_port = " + port,
                        "unix_socket_dir =",
                        "auth_type = trust",
                        "auth_file = " + users,
                        "pool_mode = transaction",
                        "default_pool_size = 2",
                        "max_client_conn = 200",
                        "ignore_startup_parameters = extra_float_digits"));
                ini.addAll(List.of(extra));
                Path file = dir.resolve("pgbouncer.ini");
                Files.writeString(file, String.join("\n", ini) + "\n");
                for (Path f : List.of(users, file)) {
                    Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-r--r--"));
                }
                List<String> command = new ArrayList<>(List.of(PgBouncer.BINARY.toString()));
                if ("root".equals(System.getProperty("user.name"))) {
                    command.addAll(List.of("-u", "postgres"));
                }
                command.add(file.toString());
                Process p = new ProcessBuilder(command)
                        .redirectErrorStream(true)
                        .redirectOutput(dir.resolve("pgbouncer.log").toFile())
                        .start();
                Bouncer b = new Bouncer(p, port);
                long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
                while (true) {
                    try (Socket s = new Socket()) {
                        s.connect(new InetSocketAddress("127.0.0.1", port), 200);
                        return b;
                    } catch (IOException notYet) {
                        if (!p.isAlive() || System.nanoTime() > end) {
                            b.close();
                            throw new IllegalStateException(
                                    "pgbouncer did not start: " + Files.readString(dir.resolve("pgbouncer.log")));
                        }
                        Thread.sleep(50);
                    }
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }

        String jdbcUrl() {
            return "jdbc:postgresql://127.0.0.1:" + port + "/postgres?user=postgres&prepareThreshold=0";
        }

        @Override
        public void close() {
            process.destroy();
            try {
                if (!process.waitFor(5, TimeUnit.SECONDS)) {
                    process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
