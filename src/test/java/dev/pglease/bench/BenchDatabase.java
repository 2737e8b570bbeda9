package dev.pglease.bench;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import javax.sql.DataSource;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * The PostgreSQL server the benchmarks measure: an embedded server (same binaries as the tests) with durable
 * commits, {@code pg_stat_statements} preloaded (to count statements) and room for a few hundred connections, or
 * the server at {@code PGLEASE_BENCH_JDBC_URL}. Also reads the CPU time of the server's processes from
 * {@code /proc}.
 */
public final class BenchDatabase implements AutoCloseable {

    public static final String URL_VARIABLE = "PGLEASE_BENCH_JDBC_URL";
    /** System property a launcher sets for forked JMH JVMs so that they reuse the server. */
    public static final String URL_PROPERTY = "pglease.bench.url";

    private final Path root;
    private final EmbeddedPostgres postgres;
    private final String url;
    private final boolean statementsAvailable;

    private BenchDatabase(Path root, EmbeddedPostgres postgres, String url) {
        this.root = root;
        this.postgres = postgres;
        this.url = url;
        this.statementsAvailable = createStatementsExtension();
    }

    /** Starts an embedded server, or connects to the one named by the environment or a system property. */
    public static BenchDatabase start() {
        String external = System.getProperty(URL_PROPERTY);
        if (external == null || external.isBlank()) {
            external = System.getenv(URL_VARIABLE);
        }
        if (external != null && !external.isBlank()) {
            return new BenchDatabase(null, null, external);
        }
        try {
            Path root = Files.createTempDirectory("pglease-bench-pg-");
            EmbeddedPostgres pg = EmbeddedPostgres.builder()
                    .setOverrideWorkingDirectory(root.resolve("binaries").toFile())
                    .setDataDirectory(root.resolve("data").toFile())
                    .setCleanDataDirectory(true)
                    .setRegisterShutdownHook(true)
                    .setPGStartupWait(Duration.ofSeconds(60))
                    .setServerConfig("fsync", "on")
                    .setServerConfig("synchronous_commit", "on")
                    .setServerConfig("max_connections", "500")
                    .setServerConfig("shared_buffers", "256MB")
                    .setServerConfig("timezone", "UTC")
                    .setServerConfig("shared_preload_libraries", "pg_stat_statements")
                    .setServerConfig("pg_stat_statements.max", "10000")
                    .setServerConfig("pg_stat_statements.track", "all")
                    .setOutputRedirector(ProcessBuilder.Redirect.DISCARD)
                    .setErrorRedirector(ProcessBuilder.Redirect.DISCARD)
                    .start();
            return new BenchDatabase(
                    root, pg, "jdbc:postgresql://localhost:" + pg.getPort() + "/postgres?user=postgres");
        } catch (IOException e) {
            throw new UncheckedIOException("could not start the benchmark PostgreSQL server", e);
        }
    }

    /** A server that is already running (no CPU figures: its processes are not ours). */
    public static BenchDatabase external(String url) {
        return new BenchDatabase(null, null, url);
    }

    public String jdbcUrl() {
        return url;
    }

    public boolean embedded() {
        return postgres != null;
    }

    /** A plain, non-pooling data source. */
    public DataSource dataSource() {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL(url);
        ds.setConnectTimeout(5);
        ds.setLoginTimeout(5);
        return ds;
    }

    /** A HikariCP pool of {@code size} connections (what an application would hand to pglease). */
    public com.zaxxer.hikari.HikariDataSource pool(int size, String name) {
        com.zaxxer.hikari.HikariConfig config = new com.zaxxer.hikari.HikariConfig();
        config.setJdbcUrl(url);
        config.setMaximumPoolSize(size);
        config.setMinimumIdle(size);
        config.setPoolName(name);
        return new com.zaxxer.hikari.HikariDataSource(config);
    }

    public void execute(String sql) {
        try (Connection c = dataSource().getConnection();
                Statement s = c.createStatement()) {
            s.execute(sql);
        } catch (SQLException e) {
            throw new IllegalStateException(sql + ": " + e.getMessage(), e);
        }
    }

    public long queryLong(String sql) {
        try (Connection c = dataSource().getConnection();
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        } catch (SQLException e) {
            throw new IllegalStateException(sql + ": " + e.getMessage(), e);
        }
    }

    public List<Object[]> query(String sql) {
        try (Connection c = dataSource().getConnection();
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery(sql)) {
            List<Object[]> rows = new ArrayList<>();
            int n = rs.getMetaData().getColumnCount();
            while (rs.next()) {
                Object[] row = new Object[n];
                for (int i = 0; i < n; i++) {
                    row[i] = rs.getObject(i + 1);
                }
                rows.add(row);
            }
            return rows;
        } catch (SQLException e) {
            throw new IllegalStateException(sql + ": " + e.getMessage(), e);
        }
    }

    private boolean createStatementsExtension() {
        try {
            execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
            queryLong("SELECT count(*) FROM pg_stat_statements");
            return true;
        } catch (RuntimeException e) {
            return false;
        }
    }

    /** Whether statements can be counted with pg_stat_statements. */
    public boolean statementsAvailable() {
        return statementsAvailable;
    }

    public void resetStatements() {
        if (statementsAvailable) {
            execute("SELECT pg_stat_statements_reset()");
        }
    }

    /**
     * Calls and rows per statement since the last reset, for statements whose text contains {@code fragment},
     * keyed by a short label of the statement.
     */
    public Map<String, long[]> statements(String fragment) {
        Map<String, long[]> out = new LinkedHashMap<>();
        if (!statementsAvailable) {
            return out;
        }
        String escaped = fragment.replace("'", "''");
        for (Object[] row : query("SELECT regexp_replace(query, '\\s+', ' ', 'g'), calls, rows FROM pg_stat_statements "
                + "WHERE query LIKE '%" + escaped
                + "%' AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                + "ORDER BY calls DESC")) {
            out.merge(
                    label((String) row[0]),
                    new long[] {((Number) row[1]).longValue(), ((Number) row[2]).longValue()},
                    (a, b) -> new long[] {a[0] + b[0], a[1] + b[1]});
        }
        return out;
    }

    private static String label(String query) {
        String q = query.trim();
        // the protocol's top-level calls (the statements inside the functions are counted only with track = all)
        if (q.startsWith("SELECT granted, token, holder, wait_ms FROM") && q.contains(".acquire(")) {
            return "acquire";
        }
        if (q.startsWith("SELECT") && q.contains(".renew_all(")) {
            return "renew";
        }
        if (q.startsWith("SELECT") && q.contains(".release(")) {
            return "release";
        }
        if (q.startsWith("SELECT $1") || q.equals("SELECT 1")) {
            return "SELECT 1 (LISTEN health check)";
        }
        if (q.startsWith("LISTEN")) {
            return "LISTEN";
        }
        return q.length() > 60 ? q.substring(0, 60) + "..." : q;
    }

    // ---------------------------------------------------------------- CPU of the server processes

    /** PIDs of the postmaster and all its children (backends, walwriter, checkpointer, ...). */
    public List<Long> serverPids() {
        List<Long> pids = new ArrayList<>();
        long postmaster;
        if (postgres != null) {
            try {
                String first = Files.readAllLines(root.resolve("data").resolve("postmaster.pid"))
                        .get(0)
                        .trim();
                postmaster = Long.parseLong(first);
            } catch (IOException e) {
                return pids;
            }
        } else {
            return pids;
        }
        pids.add(postmaster);
        ProcessHandle.of(postmaster).ifPresent(p -> p.descendants().forEach(d -> pids.add(d.pid())));
        return pids;
    }

    /** Total user + system CPU time of the server processes, in clock ticks (USER_HZ = 100 on Linux). */
    public long serverCpuTicks() {
        long total = 0;
        for (long pid : serverPids()) {
            total += cpuTicks(pid);
        }
        return total;
    }

    /** utime + stime of one process from /proc/<pid>/stat, 0 if it is gone. */
    public static long cpuTicks(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
            // after the command: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14); the children's
            // times count backends that exited (they are reaped by the postmaster)
            return Long.parseLong(f[11]) + Long.parseLong(f[12]) + Long.parseLong(f[13]) + Long.parseLong(f[14]);
        } catch (IOException | RuntimeException e) {
            return 0;
        }
    }

    public static final double TICKS_PER_SECOND = 100.0;

    @Override
    public void close() {
        if (postgres != null) {
            try {
                postgres.close();
            } catch (IOException ignored) {
                // best effort
            }
            deleteTree(root);
        }
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
        } catch (IOException ignored) {
            // temporary directory
        }
    }
}
