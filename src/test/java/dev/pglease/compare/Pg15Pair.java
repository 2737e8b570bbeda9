package dev.pglease.compare;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;

/**
 * A PostgreSQL 15 primary with one synchronous standby ({@code synchronous_standby_names = '*'}), from the system
 * binaries, run as the {@code postgres} user through {@code runuser} (the binaries refuse to run as root).
 */
final class Pg15Pair implements AutoCloseable {
    static final Path BIN = Path.of("/usr/lib/postgresql/15/bin");
    private final Path dir;
    final int primaryPort;
    final int standbyPort;
    private final Path primaryData;
    private final Path standbyData;

    /** Why this machine cannot run the pair, or null when it can. */
    static String unavailableReason() {
        if (!Files.isExecutable(BIN.resolve("postgres"))) {
            return "PostgreSQL 15 server binaries not found at " + BIN;
        }
        if (!"root".equals(System.getProperty("user.name"))) {
            return "the harness does not run as root, so it cannot switch to the postgres user with runuser";
        }
        if (!Files.isExecutable(Path.of("/usr/sbin/runuser")) && !Files.isExecutable(Path.of("/sbin/runuser"))) {
            return "runuser not found";
        }
        return null;
    }

    Pg15Pair(Path dir) {
        this.dir = dir;
        this.primaryPort = Os.freePort();
        this.standbyPort = Os.freePort();
        this.primaryData = dir.resolve("primary");
        this.standbyData = dir.resolve("standby");
        try {
            Files.createDirectories(dir);
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
            Os.run(List.of("chown", "postgres:postgres", dir.toString()));
            // every ancestor must be traversable by postgres
            for (Path p = dir.getParent(); p != null; p = p.getParent()) {
                if (!p.toString().equals("/")) {
                    Os.run(List.of("chmod", "o+x", p.toString()));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        pg("initdb", "-D", primaryData.toString(), "-U", "postgres", "--auth=trust", "-N");
        appendConf(
                primaryData,
                "port = " + primaryPort,
                "listen_addresses = '127.0.0.1'",
                "unix_socket_directories = '" + dir + "'",
                "wal_level = replica",
                "max_wal_senders = 5",
                "synchronous_standby_names = '*'",
                "synchronous_commit = on",
                "fsync = on");
        pg(
                "pg_ctl",
                "-D",
                primaryData.toString(),
                "-l",
                dir.resolve("primary.log").toString(),
                "-w",
                "start");
        pg(
                "pg_basebackup",
                "-h",
                "127.0.0.1",
                "-p",
                Integer.toString(primaryPort),
                "-U",
                "postgres",
                "-D",
                standbyData.toString(),
                "-R",
                "-X",
                "stream");
        // after promotion there is no standby left to wait for (a failover manager would clear this too)
        appendConf(
                standbyData,
                "port = " + standbyPort,
                "synchronous_standby_names = ''",
                "primary_conninfo = 'host=127.0.0.1 port=" + primaryPort + " user=postgres application_name=standby'");
        pg(
                "pg_ctl",
                "-D",
                standbyData.toString(),
                "-l",
                dir.resolve("standby.log").toString(),
                "-w",
                "start");
        awaitSync();
    }

    private void appendConf(Path data, String... lines) {
        String text = String.join("\n", lines) + "\n";
        int rc = Os.run(List.of(
                "runuser",
                "-u",
                "postgres",
                "--",
                "sh",
                "-c",
                "cat >> '" + data.resolve("postgresql.conf") + "' <<'EOF'\n" + text + "EOF\n"));
        if (rc != 0) {
            throw new IllegalStateException("could not write postgresql.conf in " + data);
        }
    }

    private void pg(String... cmd) {
        List<String> full = new ArrayList<>(List.of("runuser", "-u", "postgres", "--"));
        full.add(BIN.resolve(cmd[0]).toString());
        full.addAll(List.of(cmd).subList(1, cmd.length));
        int rc = Os.run(full);
        if (rc != 0) {
            throw new IllegalStateException("failed (" + rc + "): " + full);
        }
    }

    private void awaitSync() {
        long end = System.currentTimeMillis() + 30_000;
        while (System.currentTimeMillis() < end) {
            try (Connection c = DriverManager.getConnection(
                            "jdbc:postgresql://127.0.0.1:" + primaryPort + "/postgres?user=postgres");
                    Statement st = c.createStatement();
                    ResultSet rs =
                            st.executeQuery("SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")) {
                rs.next();
                if (rs.getInt(1) == 1) {
                    return;
                }
            } catch (Exception e) {
                // not yet
            }
            Os.sleep(200);
        }
        throw new IllegalStateException("standby did not become synchronous; logs in " + dir);
    }

    /** Both servers; candidates connect to whichever is primary. */
    String multiHostUrl() {
        return "jdbc:postgresql://127.0.0.1:" + primaryPort + ",127.0.0.1:" + standbyPort
                + "/postgres?user=postgres&targetServerType=primary&connectTimeout=2&socketTimeout=10";
    }

    PgStore primary() {
        return new PgStore(primaryPort, primaryData, "system binaries, primary with a synchronous standby");
    }

    /** kill -9 the primary's postmaster and every one of its processes. */
    void killPrimary() {
        PgStore p = primary();
        long pm = p.postmasterPid();
        List<Long> kids = Os.children(pm);
        Os.signal(pm, "KILL");
        for (long k : kids) {
            Os.signal(k, "KILL");
        }
    }

    void promoteStandby() {
        pg("pg_ctl", "-D", standbyData.toString(), "-w", "promote");
    }

    @Override
    public void close() {
        for (Path d : List.of(standbyData, primaryData)) {
            long pm = new PgStore(0, d, "").postmasterPid();
            if (pm > 0 && Os.alive(pm)) {
                Os.run(List.of(
                        "runuser",
                        "-u",
                        "postgres",
                        "--",
                        BIN.resolve("pg_ctl").toString(),
                        "-D",
                        d.toString(),
                        "-m",
                        "immediate",
                        "stop"));
            }
        }
    }
}
