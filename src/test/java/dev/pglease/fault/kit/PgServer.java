package dev.pglease.fault.kit;

import dev.pglease.internal.tool.EmbeddedPostgresServer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A PostgreSQL 15 cluster from the system binaries, run as the postgres user in a postgres-owned temp dir. Faults:
 * pause (SIGSTOP of the postmaster and every child), crash ({@code pg_ctl -m immediate}), restart, and
 * primary/standby replication with promotion, pg_rewind and pg_upgrade.
 */
public final class PgServer implements AutoCloseable {
    public static final Path BIN = Path.of(System.getProperty("pglease.fault.pgbin", "/usr/lib/postgresql/15/bin"));
    private static final Duration CMD_TIMEOUT = Duration.ofSeconds(60);

    private final String name;
    private final Path dataDir;
    private final Path logFile;
    private final int port;
    private volatile boolean paused;
    private final List<Long> pausedPids = new ArrayList<>();
    private volatile Map<String, String> environment = Map.of();

    private PgServer(String name, Path dataDir, int port) {
        this.name = name;
        this.dataDir = dataDir;
        this.logFile = dataDir.getParent().resolve(name + ".log");
        this.port = port;
    }

    /** Whether the system PostgreSQL binaries can be used here (present, and runnable as postgres). */
    public static boolean available() {
        if (!Files.isExecutable(BIN.resolve("postgres")) || !Files.isExecutable(BIN.resolve("pg_ctl"))) {
            return false;
        }
        if (Procs.isRoot()) {
            return Procs.commandExists("runuser")
                    && Procs.tryRun(Duration.ofSeconds(10), "id", "-u", "postgres")
                                    .code()
                            == 0;
        }
        return "postgres".equals(System.getProperty("user.name"));
    }

    /** A fresh postgres-owned base directory for clusters (and logs). */
    public static Path newBaseDir() {
        try {
            Path base = EmbeddedPostgresServer.privateDirectory("pglease-fault-");
            if (Procs.isRoot()) {
                Procs.run(CMD_TIMEOUT, "chown", "postgres:postgres", base.toString());
            }
            return base;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static String[] asPostgres(String... cmd) {
        if (!Procs.isRoot()) {
            return cmd;
        }
        String[] full = new String[cmd.length + 4];
        full[0] = "runuser";
        full[1] = "-u";
        full[2] = "postgres";
        full[3] = "--";
        System.arraycopy(cmd, 0, full, 4, cmd.length);
        return full;
    }

    private static String pgRun(String... cmd) {
        return Procs.run(CMD_TIMEOUT, asPostgres(cmd));
    }

    /** Default settings: small, fast, verbose enough to debug a failed run. */
    public static Map<String, String> defaults() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("listen_addresses", "'*'");
        m.put("shared_buffers", "'16MB'");
        m.put("max_connections", "60");
        m.put("fsync", "on"); // pglease refuses fsync=off
        m.put("logging_collector", "off");
        m.put("log_min_messages", "warning");
        m.put("log_line_prefix", "'%m [%p] '");
        m.put("wal_level", "replica");
        m.put("max_wal_senders", "5");
        m.put("hot_standby", "on");
        // commit times of fenced writes on the database clock (invariant 6 checks them against the next grant)
        m.put("track_commit_timestamp", "on");
        return m;
    }

    /** initdb + start a new primary. */
    public static PgServer init(Path base, String name, Map<String, String> settings) {
        return init(base, name, settings, Map.of());
    }

    /**
     * initdb + start a new primary whose postmaster (and every backend, and every later start or standby of it) runs
     * with extra environment variables, for example libfaketime's to move the server's clock ({@link FakeTime}).
     */
    public static PgServer init(Path base, String name, Map<String, String> settings, Map<String, String> env) {
        int port = Procs.freePort();
        Path dir = base.resolve(name);
        initdb(dir);
        PgServer s = new PgServer(name, dir, port);
        s.environment = Map.copyOf(env);
        s.configure(settings);
        s.start();
        return s;
    }

    private static void initdb(Path dir) {
        pgRun(
                BIN.resolve("initdb").toString(),
                "-D",
                dir.toString(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C");
    }

    /** Runs a command as postgres with {@code dir} (postgres-owned) as its working directory. */
    private static String pgRunIn(Path dir, String... cmd) {
        List<String> full =
                new ArrayList<>(List.of("sh", "-c", "cd \"$1\" && shift && exec \"$@\"", "sh", dir.toString()));
        full.addAll(List.of(cmd));
        return pgRun(full.toArray(String[]::new));
    }

    /**
     * pg_upgrade of this server (stopped with {@link #stop()}) into a new cluster {@code newName} beside it, which is
     * then configured with {@code settings} and started: a new system identifier, on timeline 1, with this server's
     * databases. The same binaries on both sides (15 to 15) make a real upgrade. What it takes: the new cluster is
     * initdb'd exactly like this one (same encoding, locale and install user, else pg_upgrade refuses it); pg_upgrade
     * runs as postgres from a directory postgres may write (it refuses to start otherwise, and writes its scripts
     * there) and puts its sockets there too; it copies the files (no {@code --link}), so this cluster stays intact;
     * pg_upgrade starts and stops both clusters itself, on ports of its own, so the new cluster's settings (port,
     * replication) are written after it.
     */
    public PgServer upgrade(String newName, Map<String, String> settings) {
        Path base = dataDir.getParent();
        Path dir = base.resolve(newName);
        initdb(dir);
        pgRunIn(
                base,
                BIN.resolve("pg_upgrade").toString(),
                "--old-bindir",
                BIN.toString(),
                "--new-bindir",
                BIN.toString(),
                "--old-datadir",
                dataDir.toString(),
                "--new-datadir",
                dir.toString(),
                "--old-port",
                Integer.toString(Procs.freePort()),
                "--new-port",
                Integer.toString(Procs.freePort()),
                "--socketdir",
                base.toString(),
                "--username",
                "postgres",
                "--no-sync");
        PgServer s = new PgServer(newName, dir, Procs.freePort());
        s.environment = environment;
        s.configure(settings);
        s.start();
        return s;
    }

    /**
     * pg_rewind of this server (stopped with {@link #stop()}) onto {@code source} (running): its history since they
     * diverged is undone, and it is set up to stream from {@code source} ({@code -R}); {@link #start()} starts it as
     * a standby. Needs {@code wal_log_hints = on} (or checksums) on this server, and the source's sockets outside
     * its data directory (setting {@code unix_socket_directories}): pg_rewind copies every file of the source's data
     * directory and fails on a socket ("could not open file .s.PGSQL.port"). pg_rewind copies the source's
     * configuration files too, so this server's own port and socket directory are written again after it.
     */
    public void rewindOnto(PgServer source) {
        pgRunIn(
                dataDir.getParent(),
                BIN.resolve("pg_rewind").toString(),
                "--target-pgdata",
                dataDir.toString(),
                "--source-server",
                "host=127.0.0.1 port=" + source.port + " user=postgres dbname=postgres" + " application_name=" + name,
                "--write-recovery-conf",
                "--no-sync");
        configure(Map.of());
    }

    /** The timeline a primary writes its WAL on (from the name of its current WAL file). */
    public long timeline() {
        return queryLong("SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint");
    }

    /** The cluster's system identifier (new for every initdb, and so for every pg_upgrade). */
    public long systemIdentifier() {
        return queryLong("SELECT system_identifier FROM pg_control_system()");
    }

    private long queryLong(String query) {
        try (Connection c = connect();
                var rs = c.createStatement().executeQuery(query)) {
            rs.next();
            return rs.getLong(1);
        } catch (SQLException e) {
            throw new IllegalStateException(name + ": " + query, e);
        }
    }

    /** Waits until this standby has replayed everything {@code primary} had written when the wait began. */
    public void awaitReplayOf(PgServer primary, Duration timeout) {
        String lsn;
        try (Connection c = primary.connect();
                var rs = c.createStatement().executeQuery("SELECT pg_current_wal_lsn()::text")) {
            rs.next();
            lsn = rs.getString(1);
        } catch (SQLException e) {
            throw new IllegalStateException(primary.name + ": current WAL position", e);
        }
        long until = System.currentTimeMillis() + timeout.toMillis();
        while (System.currentTimeMillis() < until) {
            try (Connection c = connect();
                    var ps = c.prepareStatement("SELECT coalesce(pg_last_wal_replay_lsn() >= ?::pg_lsn, false)")) {
                ps.setString(1, lsn);
                try (var rs = ps.executeQuery()) {
                    rs.next();
                    if (rs.getBoolean(1)) {
                        return;
                    }
                }
            } catch (SQLException e) {
                // not accepting connections yet
            }
            sleep(50);
        }
        throw new IllegalStateException(
                name + " did not replay " + primary.name + "'s WAL up to " + lsn + " in " + timeout);
    }

    /** A streaming standby of this server ({@code pg_basebackup -R}), started. */
    public PgServer standby(String standbyName, Map<String, String> settings) {
        return standby(standbyName, settings, port);
    }

    /**
     * A streaming standby that replicates through {@code replicationPort} (e.g. a {@link TcpProxy} in front of this
     * server, to cut replication off without touching either server).
     */
    public PgServer standby(String standbyName, Map<String, String> settings, int replicationPort) {
        int sport = Procs.freePort();
        Path dir = dataDir.getParent().resolve(standbyName);
        baseBackup(dir, standbyName);
        PgServer s = new PgServer(standbyName, dir, sport);
        s.environment = environment;
        Map<String, String> m = new LinkedHashMap<>(settings);
        m.put(
                "primary_conninfo",
                "'host=127.0.0.1 port=" + replicationPort + " user=postgres application_name=" + standbyName + "'");
        s.configure(m);
        s.start();
        return s;
    }

    /**
     * pg_basebackup into {@code dir} with a fast checkpoint (the default spread checkpoint can keep it waiting for
     * minutes, past the command's timeout, while the killed command's pg_basebackup goes on writing into the
     * directory), tried up to three times; a failed attempt leaves a partial directory, removed before the next.
     */
    private void baseBackup(Path dir, String standbyName) {
        IllegalStateException last = null;
        for (int attempt = 1; attempt <= 3; attempt++) {
            try {
                pgRun(
                        BIN.resolve("pg_basebackup").toString(),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        Integer.toString(port),
                        "-U",
                        "postgres",
                        "-D",
                        dir.toString(),
                        "-R",
                        "-X",
                        "stream",
                        "--no-sync",
                        "--checkpoint=fast",
                        "-d",
                        "application_name=" + standbyName);
                return;
            } catch (IllegalStateException e) {
                last = e;
                System.err.println("kit: pg_basebackup of " + standbyName + " failed (attempt " + attempt + "): "
                        + e.getMessage());
                pgRun("rm", "-rf", dir.toString());
                sleep(1000L * attempt);
            }
        }
        throw last;
    }

    private void configure(Map<String, String> settings) {
        StringBuilder conf = new StringBuilder("\n# pglease fault kit\n");
        conf.append("port = ").append(port).append('\n');
        conf.append("unix_socket_directories = '").append(dataDir).append("'\n");
        settings.forEach((k, v) -> conf.append(k).append(" = ").append(v).append('\n'));
        String hba = "\nhost all all 10.0.0.0/8 trust\nhost replication all 10.0.0.0/8 trust\n";
        String script = "cat >> '" + dataDir.resolve("postgresql.auto.conf") + "' <<'EOF'\n" + conf + "EOF\n"
                + "cat >> '" + dataDir.resolve("pg_hba.conf") + "' <<'EOF'\n" + hba + "EOF\n";
        pgRun("sh", "-c", script);
    }

    /** Changes settings (ALTER SYSTEM + reload). */
    public void alterSystem(Map<String, String> settings) {
        try (Connection c = connect()) {
            for (Map.Entry<String, String> e : settings.entrySet()) {
                c.createStatement().execute("ALTER SYSTEM SET " + e.getKey() + " = " + e.getValue());
            }
            c.createStatement().execute("SELECT pg_reload_conf()");
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    public void start() {
        pgCtl("-w", "-t", "60", "start");
    }

    /**
     * Starts the server with extra environment variables for the postmaster and every backend it forks (for example
     * libfaketime's, to move the server's clock); later starts keep them.
     */
    public void startWith(Map<String, String> env) {
        this.environment = Map.copyOf(env);
        start();
    }

    /** pg_ctl with this server's data directory, log file and environment. */
    private void pgCtl(String... args) {
        List<String> cmd = new ArrayList<>();
        if (!environment.isEmpty()) {
            cmd.add("env");
            environment.forEach((k, v) -> cmd.add(k + "=" + v));
        }
        cmd.addAll(List.of(BIN.resolve("pg_ctl").toString(), "-D", dataDir.toString(), "-l", logFile.toString()));
        cmd.addAll(List.of(args));
        pgRun(cmd.toArray(String[]::new));
    }

    /** Immediate shutdown: the server processes die as in a crash (recovery on the next start). */
    public void crash() {
        resume();
        Procs.tryRun(
                CMD_TIMEOUT,
                asPostgres(
                        BIN.resolve("pg_ctl").toString(), "-D", dataDir.toString(), "-m", "immediate", "-w", "stop"));
    }

    /** SIGKILL of the postmaster and every child (a harder crash than immediate stop). */
    public void kill9() {
        long pm = postmasterPid();
        if (pm <= 0) {
            return;
        }
        List<Long> kids = Procs.children(pm);
        Procs.signal(pm, "KILL");
        for (long k : kids) {
            Procs.signal(k, "KILL");
        }
        paused = false;
        pausedPids.clear();
        // wait for the children to go so that the port and shared memory are free
        long until = System.currentTimeMillis() + 10_000;
        while (System.currentTimeMillis() < until
                && kids.stream().anyMatch(k -> Procs.state(k) != '?' && Procs.state(k) != 'Z')) {
            sleep(20);
        }
    }

    public void restartFast() {
        resume();
        pgCtl("-m", "fast", "-w", "-t", "60", "restart");
    }

    /** Fast shutdown that fails unless the server stops cleanly (as pg_upgrade and pg_rewind need it). */
    public void stop() {
        resume();
        pgRun(BIN.resolve("pg_ctl").toString(), "-D", dataDir.toString(), "-m", "fast", "-w", "-t", "60", "stop");
    }

    public void stopFast() {
        resume();
        Procs.tryRun(
                CMD_TIMEOUT,
                asPostgres(BIN.resolve("pg_ctl").toString(), "-D", dataDir.toString(), "-m", "fast", "-w", "stop"));
    }

    public void promote() {
        pgRun(BIN.resolve("pg_ctl").toString(), "-D", dataDir.toString(), "-w", "-t", "60", "promote");
    }

    /** PID of the running postmaster, from postmaster.pid, or -1. */
    public long postmasterPid() {
        Path pidFile = dataDir.resolve("postmaster.pid");
        try {
            if (!Files.exists(pidFile)) {
                return -1;
            }
            return Long.parseLong(Files.readAllLines(pidFile).get(0).trim());
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    /** SIGSTOP the postmaster first (no new forks), then every child it has. */
    public synchronized void pause() {
        if (paused) {
            return;
        }
        long pm = postmasterPid();
        if (pm <= 0) {
            throw new IllegalStateException(name + " is not running");
        }
        Procs.signal(pm, "STOP");
        pausedPids.add(pm);
        for (long child : Procs.children(pm)) {
            if (Procs.signal(child, "STOP")) {
                pausedPids.add(child);
            }
        }
        paused = true;
    }

    public synchronized void resume() {
        if (!paused) {
            return;
        }
        for (int i = pausedPids.size() - 1; i >= 0; i--) {
            Procs.signal(pausedPids.get(i), "CONT");
        }
        pausedPids.clear();
        paused = false;
    }

    public boolean isPaused() {
        return paused;
    }

    /** Processes stopped by the last pause (postmaster first). */
    public synchronized List<Long> pausedPids() {
        return List.copyOf(pausedPids);
    }

    public int port() {
        return port;
    }

    public String name() {
        return name;
    }

    public Path dataDir() {
        return dataDir;
    }

    public Path logFile() {
        return logFile;
    }

    public String jdbcUrl() {
        return jdbcUrl("127.0.0.1", port);
    }

    public static String jdbcUrl(String host, int port) {
        return "jdbc:postgresql://" + host + ":" + port + "/postgres?user=postgres&connectTimeout=3&socketTimeout=10"
                + "&tcpKeepAlive=true";
    }

    public Connection connect() throws SQLException {
        return DriverManager.getConnection(jdbcUrl());
    }

    /** Waits until the server accepts connections (and, if asked, is a primary). */
    public void awaitReady(boolean primary, Duration timeout) {
        long until = System.currentTimeMillis() + timeout.toMillis();
        SQLException last = null;
        while (System.currentTimeMillis() < until) {
            try (Connection c = connect();
                    var rs = c.createStatement().executeQuery("SELECT pg_is_in_recovery()")) {
                rs.next();
                if (!primary || !rs.getBoolean(1)) {
                    return;
                }
            } catch (SQLException e) {
                last = e;
            }
            sleep(100);
        }
        throw new IllegalStateException(name + " not ready in " + timeout, last);
    }

    public static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Stops the server (whatever state it is in) and deletes its data directory. */
    @Override
    public void close() {
        resume();
        if (postmasterPid() > 0) {
            Procs.tryRun(
                    CMD_TIMEOUT,
                    asPostgres(
                            BIN.resolve("pg_ctl").toString(),
                            "-D",
                            dataDir.toString(),
                            "-m",
                            "immediate",
                            "-w",
                            "stop"));
        }
        deleteTree(dataDir);
    }

    static void deleteTree(Path p) {
        if (!Files.exists(p)) {
            return;
        }
        try (var walk = Files.walk(p)) {
            walk.sorted(Comparator.reverseOrder()).forEach(x -> {
                try {
                    Files.deleteIfExists(x);
                } catch (IOException ignored) {
                    // best effort
                }
            });
        } catch (IOException ignored) {
            // best effort
        }
    }

    /** Deletes a base dir made by {@link #newBaseDir()} (after every server in it was closed). */
    public static void deleteBase(Path base) {
        deleteTree(base);
    }
}
