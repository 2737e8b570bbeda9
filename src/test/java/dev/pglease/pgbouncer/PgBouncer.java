package dev.pglease.pgbouncer;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Debian's {@code pgbouncer} in front of a PostgreSQL server, started as a child process on a free loopback port
 * and stopped by its PID. Clients log in without a password check ({@code auth_type = trust}, as the embedded server
 * does) as the server's user or as any other login role of the server: PgBouncer looks a login up in
 * {@code pg_shadow} as the server's user ({@code auth_query}), so tests that create logins work through it. The
 * server's user is also an admin of PgBouncer's console (database {@code pgbouncer}).
 */
public final class PgBouncer implements AutoCloseable {

    /** Where Debian's package installs it. */
    public static final Path BINARY = Path.of("/usr/sbin/pgbouncer");

    private final Process process;
    private final int port;
    private final Path dir;
    private final String user;

    private PgBouncer(Process process, int port, Path dir, String user) {
        this.process = process;
        this.port = port;
        this.dir = dir;
        this.user = user;
    }

    /** Whether the binary is installed; tests that need it skip (or fail under CI) when it is not. */
    public static boolean installed() {
        return Files.isExecutable(BINARY);
    }

    /**
     * Starts PgBouncer in front of {@code serverPort} on 127.0.0.1, for every database, in the given pool mode
     * ({@code transaction}, {@code session} or {@code statement}) with {@code poolSize} server connections per
     * database and user.
     */
    public static PgBouncer start(int serverPort, String user, String poolMode, int poolSize) {
        if (!List.of("transaction", "session", "statement").contains(poolMode)) {
            throw new IllegalArgumentException("poolMode must be transaction, session or statement, got " + poolMode);
        }
        IllegalStateException last = null;
        for (int attempt = 0; attempt < 3; attempt++) {
            try {
                return tryStart(serverPort, user, poolMode, poolSize, freePort());
            } catch (IllegalStateException e) {
                last = e; // most likely another process took the port between probing and binding
            }
        }
        throw last;
    }

    private static PgBouncer tryStart(int serverPort, String user, String poolMode, int poolSize, int port) {
        try {
            Path dir = Files.createTempDirectory(
                    "pglease-pgbouncer-",
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwxr-xr-x")));
            Path users = dir.resolve("users.txt");
            Files.writeString(users, "\"" + user + "\" \"\"\n");
            Path ini = dir.resolve("pgbouncer.ini");
            Files.writeString(
                    ini,
                    String.join(
                            "\n",
                            "[databases]",
                            "* = host=127.0.0.1 port=" + serverPort,
                            "[pgbouncer]",
                            "listen_addr = 127.0.0.1",
                            "listen_port = " + port,
                            "unix_socket_dir =",
                            "auth_type = trust",
                            "auth_file = " + users,
                            // logins other than the server's user (created by the tests) are looked up on the server
                            "auth_user = " + user,
                            "auth_query = SELECT usename, passwd FROM pg_shadow WHERE usename = $1",
                            "admin_users = " + user,
                            "pool_mode = " + poolMode,
                            "default_pool_size = " + poolSize,
                            "max_client_conn = 2000",
                            "max_db_connections = 0",
                            // pgjdbc sends extra_float_digits in the startup packet; PgBouncer only passes known
                            // parameters
                            "ignore_startup_parameters = extra_float_digits",
                            "server_login_retry = 1",
                            // every test makes logins of its own, and each login gets a pool of its own: server
                            // connections left idle by finished tests close soon instead of after ten minutes, so
                            // they never add up to the server's max_connections
                            "server_idle_timeout = 5",
                            ""));
            for (Path f : List.of(users, ini)) {
                Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rw-r--r--"));
            }
            List<String> command = new ArrayList<>(List.of(BINARY.toString()));
            if ("root".equals(System.getProperty("user.name"))) {
                command.addAll(List.of("-u", "postgres")); // PgBouncer refuses to run as root
            }
            command.add(ini.toString());
            Process process = new ProcessBuilder(command)
                    .redirectErrorStream(true)
                    .redirectOutput(dir.resolve("pgbouncer.log").toFile())
                    .start();
            PgBouncer bouncer = new PgBouncer(process, port, dir, user);
            bouncer.awaitListening(Duration.ofSeconds(15));
            return bouncer;
        } catch (IOException e) {
            throw new UncheckedIOException("could not start " + BINARY, e);
        }
    }

    private void awaitListening(Duration timeout) {
        long end = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < end) {
            if (!process.isAlive()) {
                throw new IllegalStateException("pgbouncer exited with " + process.exitValue() + ": " + log());
            }
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress("127.0.0.1", port), 200);
                return;
            } catch (IOException notYet) {
                sleep(50);
            }
        }
        close();
        throw new IllegalStateException(
                "pgbouncer did not listen on port " + port + " within " + timeout + ": " + log());
    }

    /** JDBC URL of {@code database} through the pooler, with pgjdbc's server-side prepared statements off. */
    public String jdbcUrl(String database) {
        return "jdbc:postgresql://127.0.0.1:" + port + "/" + database + "?user=" + user + "&prepareThreshold=0";
    }

    public int port() {
        return port;
    }

    /** psql, the client that can talk to PgBouncer's admin console (pgjdbc's startup settings are refused there). */
    public static final Path PSQL = Path.of("/usr/bin/psql");

    /**
     * A setting as PgBouncer itself reports it ({@code SHOW CONFIG} on its admin console, database
     * {@code pgbouncer}, through {@link #PSQL}), e.g. {@code pool_mode}.
     */
    public String setting(String key) throws IOException, InterruptedException {
        Process psql = new ProcessBuilder(
                        PSQL.toString(),
                        "-X",
                        "-At",
                        "-F",
                        "\t",
                        "-h",
                        "127.0.0.1",
                        "-p",
                        Integer.toString(port),
                        "-U",
                        user,
                        "-d",
                        "pgbouncer",
                        "-c",
                        "SHOW CONFIG")
                .redirectErrorStream(true)
                .start();
        String out = new String(psql.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
        if (!psql.waitFor(10, TimeUnit.SECONDS) || psql.exitValue() != 0) {
            throw new IllegalStateException("psql SHOW CONFIG on PgBouncer's console failed: " + out);
        }
        for (String row : out.split("\n")) {
            String[] cells = row.split("\t");
            if (cells.length >= 2 && cells[0].equals(key)) {
                return cells[1];
            }
        }
        throw new IllegalArgumentException("PgBouncer has no setting " + key + " in: " + out);
    }

    public long pid() {
        return process.pid();
    }

    /** The PgBouncer log so far. */
    public String log() {
        try {
            return Files.readString(dir.resolve("pgbouncer.log"));
        } catch (IOException e) {
            return "(no log: " + e.getMessage() + ")";
        }
    }

    /** Stops the process (SIGTERM to its PID, then SIGKILL after 5 s). */
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

    private static int freePort() {
        return dev.pglease.fault.kit.Procs.freePort();
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
