package dev.pglease.ha;

import dev.pglease.fault.kit.PgServer;
import dev.pglease.fault.kit.Procs;
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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A PostgreSQL 15 cluster run by pg_auto_failover ({@code pg_autoctl} from Debian's postgresql-15-auto-failover) on
 * this machine: a monitor, a primary and a secondary, each a {@code pg_autoctl run} process (as the postgres user)
 * that this class started and stops by process id. The monitor's health checks are shortened (1 s period, node
 * unhealthy after 3 s, demote timeout 5 s) so a failover fits in a test.
 */
final class AutoFailoverCluster implements HaCluster {
    static final Path BIN = Path.of("/usr/lib/postgresql/15/bin");
    private static final Duration CMD = Duration.ofSeconds(120);
    /** Monitor settings: how fast the manager notices a lost primary. */
    static final Map<String, String> MONITOR_SETTINGS = Map.of(
            "pgautofailover.health_check_period", "1000",
            "pgautofailover.health_check_timeout", "1000",
            "pgautofailover.health_check_max_retries", "1",
            "pgautofailover.health_check_retry_delay", "500",
            "pgautofailover.node_considered_unhealthy_timeout", "3000",
            "pgautofailover.primary_demote_timeout", "5000");

    private final Path base;
    private final int monitorPort;
    private final Map<String, Integer> ports = new LinkedHashMap<>();
    private final Map<String, Process> keepers = new LinkedHashMap<>();
    private final List<Process> all = new ArrayList<>();

    /** Whether pg_autoctl and the PostgreSQL 15 binaries are usable here. */
    static boolean available() {
        return PgServer.available() && Procs.commandExists("pg_autoctl");
    }

    private AutoFailoverCluster() {
        base = PgServer.newBaseDir();
        monitorPort = Procs.freePort();
    }

    /** Starts the monitor and two nodes; {@code synchronous} keeps the secondary in the replication quorum. */
    static AutoFailoverCluster start(boolean synchronous) {
        AutoFailoverCluster c = new AutoFailoverCluster();
        try {
            c.boot(synchronous);
            return c;
        } catch (RuntimeException | Error e) {
            c.close();
            throw e;
        }
    }

    private void boot(boolean synchronous) {
        autoctl(
                "create",
                "monitor",
                "--pgdata",
                dir("monitor"),
                "--pgport",
                Integer.toString(monitorPort),
                "--hostname",
                "127.0.0.1",
                "--auth",
                "trust",
                "--no-ssl");
        all.add(spawn("monitor", "run", "--pgdata", dir("monitor")));
        awaitSql(monitorPort, "pg_auto_failover", "SELECT 1", Duration.ofSeconds(60));
        try (Connection c = HaCluster.connect(monitorPort, "pg_auto_failover");
                Statement st = c.createStatement()) {
            for (Map.Entry<String, String> s : MONITOR_SETTINGS.entrySet()) {
                st.execute("ALTER SYSTEM SET " + s.getKey() + " = " + s.getValue());
            }
            st.execute("SELECT pg_reload_conf()");
        } catch (SQLException e) {
            throw new IllegalStateException("monitor settings: " + e.getMessage(), e);
        }
        String monitorUri = "postgres://autoctl_node@127.0.0.1:" + monitorPort + "/pg_auto_failover?sslmode=disable";
        for (String node : List.of("a", "b")) {
            int port = Procs.freePort();
            ports.put(node, port);
            Process p = spawn(
                    node,
                    "create",
                    "postgres",
                    "--pgdata",
                    dir(node),
                    "--pgport",
                    Integer.toString(port),
                    "--hostname",
                    "127.0.0.1",
                    "--auth",
                    "trust",
                    "--no-ssl",
                    "--monitor",
                    monitorUri,
                    "--name",
                    node,
                    "--run");
            keepers.put(node, p);
            all.add(p);
            awaitState(node, node.equals("a") ? "single" : "secondary", Duration.ofSeconds(90));
            if (!synchronous) {
                // out of the replication quorum: the primary does not wait for it (synchronous_standby_names = '')
                autoctl("set", "node", "replication-quorum", "false", "--pgdata", dir(node));
            }
        }
        awaitState("a", "primary", Duration.ofSeconds(60));
        awaitSql(
                ports.get("a"),
                "postgres",
                "SELECT 1 WHERE current_setting('synchronous_standby_names') " + (synchronous ? "<> ''" : "= ''"),
                Duration.ofSeconds(30));
    }

    @Override
    public Map<String, Integer> nodePorts() {
        return java.util.Collections.unmodifiableMap(ports);
    }

    /** SIGKILL the node's keeper and its Postgres (every process of the node): the machine is gone. */
    @Override
    public void kill(String node) {
        Process p = keepers.get(node);
        List<ProcessHandle> tree = new ArrayList<>(p.descendants().toList());
        tree.add(p.toHandle());
        for (ProcessHandle h : tree) {
            Procs.signal(h.pid(), "KILL");
        }
    }

    /** SIGSTOP (or SIGCONT) the node's keeper and Postgres: a frozen machine. */
    @Override
    public void freeze(String node, boolean frozen) {
        Process p = keepers.get(node);
        List<ProcessHandle> tree = new ArrayList<>(p.descendants().toList());
        tree.add(p.toHandle());
        for (ProcessHandle h : tree) {
            Procs.signal(h.pid(), frozen ? "STOP" : "CONT");
        }
    }

    /** A planned switchover through the monitor; returns when pg_autoctl reports it done. */
    @Override
    public void switchover() {
        autoctl(
                "perform",
                "switchover",
                "--pgdata",
                dir(ports.keySet().iterator().next()));
    }

    /** Timeline of a node, from the monitor's view (for reports). */
    @Override
    public String state() {
        return autoctl("show", "state", "--pgdata", dir("monitor"));
    }

    private void awaitState(String node, String state, Duration timeout) {
        long until = System.nanoTime() + timeout.toNanos();
        String last = "";
        while (System.nanoTime() < until) {
            try (Connection c = HaCluster.connect(monitorPort, "pg_auto_failover");
                    Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery(
                            "SELECT reportedstate FROM pgautofailover.node WHERE nodename = '" + node + "'")) {
                if (rs.next()) {
                    last = rs.getString(1);
                    if (state.equals(last)) {
                        return;
                    }
                }
            } catch (SQLException e) {
                last = e.getMessage();
            }
            PgServer.sleep(300);
        }
        throw new IllegalStateException("node " + node + " did not reach state " + state + " in " + timeout + " (last: "
                + last + "); logs in " + base);
    }

    private static void awaitSql(int port, String db, String sql, Duration timeout) {
        long until = System.nanoTime() + timeout.toNanos();
        String last = "";
        while (System.nanoTime() < until) {
            try (Connection c = HaCluster.connect(port, db);
                    Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery(sql)) {
                if (rs.next()) {
                    return;
                }
                last = "no row";
            } catch (SQLException e) {
                last = e.getMessage();
            }
            PgServer.sleep(200);
        }
        throw new IllegalStateException(sql + " on port " + port + " did not answer in " + timeout + ": " + last);
    }

    private String dir(String name) {
        return base.resolve(name).toString();
    }

    private List<String> command(String... args) {
        List<String> cmd = new ArrayList<>();
        if (Procs.isRoot()) {
            cmd.addAll(List.of("runuser", "-u", "postgres", "--"));
        }
        cmd.addAll(List.of(
                "env",
                "PATH=" + BIN + ":/usr/bin:/bin",
                "XDG_CONFIG_HOME=" + base.resolve("config"),
                "XDG_DATA_HOME=" + base.resolve("data"),
                "pg_autoctl"));
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** Runs pg_autoctl to completion; its output (as bytes: Latin-1) is returned and appended to commands.log. */
    private String autoctl(String... args) {
        List<String> cmd = command(args);
        try {
            Path out = Files.createTempFile(base, "cmd-", ".out");
            Process p = new ProcessBuilder(cmd)
                    .redirectErrorStream(true)
                    .redirectOutput(out.toFile())
                    .start();
            if (!p.waitFor(CMD.toSeconds(), java.util.concurrent.TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IllegalStateException(String.join(" ", cmd) + ": no answer in " + CMD);
            }
            String text = Files.readString(out, java.nio.charset.StandardCharsets.ISO_8859_1);
            Files.writeString(
                    base.resolve("commands.log"),
                    "$ " + String.join(" ", cmd) + "\n" + text,
                    java.nio.charset.StandardCharsets.ISO_8859_1,
                    java.nio.file.StandardOpenOption.CREATE,
                    java.nio.file.StandardOpenOption.APPEND);
            Files.delete(out);
            if (p.exitValue() != 0) {
                throw new IllegalStateException(String.join(" ", cmd) + " -> exit " + p.exitValue() + ": " + text);
            }
            return text;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    private Process spawn(String name, String... args) {
        try {
            Path log = base.resolve(name + ".log");
            return new ProcessBuilder(command(args))
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                    .start();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Where the logs of the monitor and the nodes are. */
    Path baseDir() {
        return base;
    }

    @Override
    public void close() {
        for (Process p : all) {
            List<ProcessHandle> tree = new ArrayList<>(p.descendants().toList());
            tree.add(p.toHandle());
            for (ProcessHandle h : tree) {
                Procs.signal(h.pid(), "CONT");
                Procs.signal(h.pid(), "KILL");
            }
        }
        for (Process p : all) {
            try {
                p.waitFor();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (!Boolean.getBoolean("pglease.ha.keep")) {
            try (var files = Files.walk(base)) {
                files.sorted(java.util.Comparator.reverseOrder())
                        .forEach(f -> f.toFile().delete());
            } catch (IOException ignored) {
                // best effort: a temp directory
            }
        }
    }
}
