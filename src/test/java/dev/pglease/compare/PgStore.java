package dev.pglease.compare;

import io.zonky.test.db.postgres.embedded.EmbeddedPostgres;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * A PostgreSQL server as a store: either an embedded one (zonky, PostgreSQL 17, runs as root) or an external
 * one given by port and data directory (the PostgreSQL 15 primary of {@link Pg15Pair}).
 */
class PgStore implements Store {
    private final EmbeddedPostgres embedded;
    private final Path dataDir;
    private Path log;
    final int port;
    private final String label;

    /** Embedded server in {@code dir}. */
    PgStore(Path dir, String label) {
        this.label = label;
        try {
            Files.createDirectories(dir);
            this.dataDir = dir.resolve("data");
            this.log = dir.resolve("pg.log");
            this.embedded = EmbeddedPostgres.builder()
                    .setOverrideWorkingDirectory(dir.resolve("work").toFile())
                    .setDataDirectory(dataDir)
                    .setCleanDataDirectory(true)
                    .setServerConfig("synchronous_commit", "on")
                    .setServerConfig("fsync", "on")
                    // every statement is logged, so requests can be counted by the server (see requests())
                    .setServerConfig("log_min_duration_statement", "0")
                    .setServerConfig("log_line_prefix", "%p|app=%a|")
                    .setServerConfig("max_connections", "100")
                    .setOutputRedirector(ProcessBuilder.Redirect.appendTo(
                            dir.resolve("pg.log").toFile()))
                    .setErrorRedirector(ProcessBuilder.Redirect.appendTo(
                            dir.resolve("pg.log").toFile()))
                    .start();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        this.port = embedded.getPort();
    }

    /** External, already running server. */
    PgStore(int port, Path dataDir, String label) {
        this.embedded = null;
        this.port = port;
        this.dataDir = dataDir;
        this.label = label;
    }

    String jdbcUrl() {
        return "jdbc:postgresql://127.0.0.1:" + port + "/postgres?user=postgres";
    }

    Connection connect() throws SQLException {
        return DriverManager.getConnection(harnessUrl());
    }

    void exec(String... sql) {
        try (Connection c = connect();
                Statement st = c.createStatement()) {
            for (String s : sql) {
                st.execute(s);
            }
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    long postmasterPid() {
        try {
            return Long.parseLong(
                    Files.readAllLines(dataDir.resolve("postmaster.pid")).get(0).trim());
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    @Override
    public String connectString() {
        return jdbcUrl();
    }

    @Override
    public List<Long> pids() {
        List<Long> out = new ArrayList<>();
        long pm = postmasterPid();
        if (pm > 0 && Os.alive(pm)) {
            out.add(pm);
            out.addAll(Os.children(pm));
        }
        return out;
    }

    @Override
    public long cpuTicks() {
        long sum = 0;
        for (long pid : pids()) {
            sum += Math.max(0, Os.cpuTicks(pid));
        }
        return sum;
    }

    /** A URL for the harness's own queries, which {@link #requests()} does not count. */
    String harnessUrl() {
        return jdbcUrl() + "&ApplicationName=harness";
    }

    /**
     * Statements the server executed for clients other than the harness, counted from the server log
     * ({@code log_min_duration_statement = 0}: one {@code statement:} line per simple-protocol statement, one
     * {@code execute} line per extended-protocol execution). The statistics views are not used: an idle session
     * flushes its counters late and only in part.
     */
    @Override
    public long requests() {
        if (log == null) {
            return -1;
        }
        long n = 0;
        try (var lines = Files.lines(log)) {
            n = lines.filter(l -> l.contains("duration:")
                            && !l.contains("app=harness|")
                            && (l.contains(" statement: ") || l.contains(" execute ")))
                    .count();
        } catch (IOException | java.io.UncheckedIOException e) {
            return -1;
        }
        return n;
    }

    @Override
    public String requestCounterName() {
        return "statements executed (server log, log_min_duration_statement = 0)";
    }

    @Override
    public Set<Integer> clientPorts() {
        return Set.of(port);
    }

    @Override
    public int clientConnections() {
        try (Connection c = connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                        + "'client backend' AND pid <> pg_backend_pid()")) {
            rs.next();
            return rs.getInt(1);
        } catch (SQLException e) {
            return -1;
        }
    }

    @Override
    public String describe() {
        try (Connection c = connect();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("SHOW server_version")) {
            rs.next();
            return "PostgreSQL " + rs.getString(1) + " (" + label + ")";
        } catch (SQLException e) {
            return "PostgreSQL (" + label + ")";
        }
    }

    @Override
    public void close() {
        if (embedded != null) {
            try {
                embedded.close();
            } catch (IOException e) {
                System.err.println("closing embedded postgres: " + e);
            }
        }
    }
}
