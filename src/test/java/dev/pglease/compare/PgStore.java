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
    final int port;
    private final String label;

    /** Embedded server in {@code dir}. */
    PgStore(Path dir, String label) {
        this.label = label;
        try {
            Files.createDirectories(dir);
            this.dataDir = dir.resolve("data");
            this.embedded = EmbeddedPostgres.builder()
                    .setOverrideWorkingDirectory(dir.resolve("work").toFile())
                    .setDataDirectory(dataDir)
                    .setCleanDataDirectory(true)
                    .setServerConfig("synchronous_commit", "on")
                    .setServerConfig("fsync", "on")
                    .setServerConfig("max_connections", "100")
                    .setOutputRedirector(ProcessBuilder.Redirect.appendTo(dir.resolve("pg.log").toFile()))
                    .setErrorRedirector(ProcessBuilder.Redirect.appendTo(dir.resolve("pg.log").toFile()))
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
        return DriverManager.getConnection(jdbcUrl());
    }

    void exec(String... sql) {
        try (Connection c = connect(); Statement st = c.createStatement()) {
            for (String s : sql) {
                st.execute(s);
            }
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    long postmasterPid() {
        try {
            return Long.parseLong(Files.readAllLines(dataDir.resolve("postmaster.pid")).get(0).trim());
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

    @Override
    public long requests() {
        try (Connection c = connect(); Statement st = c.createStatement();
             ResultSet rs = st.executeQuery("SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database")) {
            rs.next();
            return rs.getLong(1);
        } catch (SQLException e) {
            return 0;
        }
    }

    @Override
    public String requestCounterName() {
        return "transactions (pg_stat_database xact_commit + xact_rollback; one per autocommit statement)";
    }

    @Override
    public Set<Integer> clientPorts() {
        return Set.of(port);
    }

    @Override
    public int clientConnections() {
        try (Connection c = connect(); Statement st = c.createStatement();
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
        try (Connection c = connect(); Statement st = c.createStatement();
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
