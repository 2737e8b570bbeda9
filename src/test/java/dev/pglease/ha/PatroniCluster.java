package dev.pglease.ha;

import dev.pglease.fault.kit.PgServer;
import dev.pglease.fault.kit.Procs;
import dev.pglease.testkit.ServerProcess;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
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
 * A PostgreSQL 15 cluster run by Patroni (Debian's {@code patroni}) on this machine: a one-member etcd as Patroni's
 * store and two nodes, each a {@code patroni} process (as the postgres user) that starts and manages its own
 * PostgreSQL. Patroni's timing is shortened (leader key TTL 10 s, loop_wait 1 s, retry_timeout 4 s) so a failover
 * fits in a test; synchronous mode is Patroni's {@code synchronous_mode: true}.
 */
final class PatroniCluster implements HaCluster {
    static final String ETCD = "/usr/bin/etcd";
    /** Patroni's dynamic settings: how fast it notices a lost leader (TTL of the leader key in etcd). */
    static final int TTL_S = 10;

    static final int LOOP_WAIT_S = 1;
    static final int RETRY_TIMEOUT_S = 4;
    private static final Duration CMD = Duration.ofSeconds(120);
    private static final HttpClient HTTP =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    private final Path base;
    private final String scope;
    private final int etcdPort = Procs.freePort();
    private final int etcdPeerPort = Procs.freePort();
    private final Map<String, Integer> ports = new LinkedHashMap<>();
    private final Map<String, Integer> restPorts = new LinkedHashMap<>();
    private final Map<String, Process> agents = new LinkedHashMap<>();
    private final Map<String, List<Long>> frozen = new LinkedHashMap<>();
    private Process etcd;

    /** Whether patroni, its etcd client, etcd and the PostgreSQL 15 binaries are usable here. */
    static boolean available() {
        return PgServer.available()
                && Procs.commandExists("patroni")
                && Procs.commandExists("patronictl")
                && Files.isExecutable(Path.of(ETCD))
                && Procs.tryRun(Duration.ofSeconds(20), "/usr/bin/python3", "-c", "import etcd")
                                .code()
                        == 0;
    }

    private PatroniCluster() {
        base = PgServer.newBaseDir();
        scope = "pglease-" + base.getFileName().toString().replaceAll("[^A-Za-z0-9]", "");
        for (String node : List.of("a", "b")) {
            ports.put(node, Procs.freePort());
            restPorts.put(node, Procs.freePort());
        }
    }

    /** Starts etcd and two Patroni nodes; {@code synchronous} turns on Patroni's synchronous mode. */
    static PatroniCluster start(boolean synchronous) {
        PatroniCluster c = new PatroniCluster();
        try {
            c.boot(synchronous);
            return c;
        } catch (RuntimeException | Error e) {
            String logs = c.logTails();
            c.close();
            throw new IllegalStateException(e.getMessage() + logs, e);
        }
    }

    /** The first and last lines of etcd's and every agent's log, for a failure message (the logs go with the cluster). */
    private String logTails() {
        StringBuilder out = new StringBuilder();
        List<String> names = new ArrayList<>(List.of("etcd"));
        names.addAll(ports.keySet());
        for (String name : names) {
            Path log = base.resolve(name + ".log");
            try {
                List<String> lines = Files.readAllLines(log);
                int head = Math.min(lines.size(), 40);
                out.append("\n--- first lines of ").append(log.getFileName()).append(":\n");
                lines.subList(0, head).forEach(l -> out.append(l).append('\n'));
                out.append("--- last lines:\n");
                lines.subList(Math.max(head, lines.size() - 25), lines.size())
                        .forEach(l -> out.append(l).append('\n'));
            } catch (IOException | RuntimeException e) {
                out.append("\n--- ").append(log.getFileName()).append(": ").append(e);
            }
        }
        return out.toString();
    }

    private void boot(boolean synchronous) {
        etcd = ServerProcess.start(
                List.of(
                        ETCD,
                        "--name",
                        "dcs",
                        "--data-dir",
                        base.resolve("etcd").toString(),
                        "--listen-client-urls",
                        "http://127.0.0.1:" + etcdPort,
                        "--advertise-client-urls",
                        "http://127.0.0.1:" + etcdPort,
                        "--listen-peer-urls",
                        "http://127.0.0.1:" + etcdPeerPort,
                        "--initial-advertise-peer-urls",
                        "http://127.0.0.1:" + etcdPeerPort,
                        "--initial-cluster",
                        "dcs=http://127.0.0.1:" + etcdPeerPort,
                        "--logger",
                        "zap",
                        "--log-level",
                        "warn"),
                base.resolve("etcd.log"));
        ServerProcess.await(
                "etcd did not answer",
                Duration.ofSeconds(30),
                200,
                () -> get("http://127.0.0.1:" + etcdPort + "/health") == 200,
                base);
        for (String node : ports.keySet()) {
            Path config = base.resolve(node + ".yml");
            try {
                Files.writeString(config, config(node, synchronous));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            List<String> cmd = new ArrayList<>();
            if (Procs.isRoot()) {
                cmd.addAll(List.of("runuser", "-u", "postgres", "--"));
            }
            cmd.addAll(List.of("env", "PATH=" + PgServer.BIN + ":/usr/bin:/bin", "patroni", config.toString()));
            agents.put(node, ServerProcess.start(cmd, base.resolve(node + ".log")));
        }
        Duration boot = Duration.ofSeconds(120);
        ServerProcess.await(
                "no Patroni leader with a streaming " + (synchronous ? "synchronous" : "asynchronous") + " replica",
                boot,
                300,
                () -> replicating(synchronous),
                base);
    }

    private String config(String node, boolean synchronous) {
        int rest = restPorts.get(node);
        int port = ports.get(node);
        return String.join(
                "\n",
                "scope: " + scope,
                "name: " + node,
                "log:",
                "  level: INFO",
                "restapi:",
                "  listen: 127.0.0.1:" + rest,
                "  connect_address: 127.0.0.1:" + rest,
                "etcd3:",
                "  hosts: 127.0.0.1:" + etcdPort,
                "bootstrap:",
                "  dcs:",
                "    ttl: " + TTL_S,
                "    loop_wait: " + LOOP_WAIT_S,
                "    retry_timeout: " + RETRY_TIMEOUT_S,
                "    synchronous_mode: " + synchronous,
                "    postgresql:",
                "      use_pg_rewind: true",
                "      parameters:",
                "        max_connections: 60",
                "        max_wal_senders: 5",
                "        max_replication_slots: 5",
                "        wal_log_hints: 'on'",
                "        track_commit_timestamp: 'on'",
                "  initdb:",
                "    - encoding: UTF8",
                "    - locale: C",
                "    - auth: trust",
                "postgresql:",
                "  listen: 127.0.0.1:" + port,
                "  connect_address: 127.0.0.1:" + port,
                "  data_dir: " + base.resolve(node),
                "  bin_dir: " + PgServer.BIN,
                "  pgpass: " + base.resolve("pgpass-" + node),
                "  authentication:",
                "    superuser:",
                "      username: postgres",
                "    replication:",
                "      username: postgres",
                "  pg_hba:",
                "    - local all all trust",
                "    - host all all 127.0.0.1/32 trust",
                "    - host replication all 127.0.0.1/32 trust",
                "  parameters:",
                "    unix_socket_directories: '" + base + "'",
                "    shared_buffers: 16MB",
                "    log_min_messages: warning",
                "    fsync: 'on'",
                "");
    }

    /** The leader's PostgreSQL streams to the other node (as a synchronous standby if asked). */
    private boolean replicating(boolean synchronous) {
        String leader = primary();
        if (leader == null) {
            return false;
        }
        try (Connection c = HaCluster.connect(ports.get(leader), "postgres");
                Statement st = c.createStatement();
                ResultSet rs =
                        st.executeQuery("SELECT 1 FROM pg_stat_replication WHERE state = 'streaming' AND sync_state "
                                + (synchronous ? "= 'sync'" : "= 'async'"))) {
            return rs.next();
        } catch (SQLException e) {
            return false;
        }
    }

    @Override
    public Map<String, Integer> nodePorts() {
        return java.util.Collections.unmodifiableMap(ports);
    }

    /** The Patroni agent and every PostgreSQL process of the node (the postmaster is not the agent's child). */
    private List<Long> processes(String node) {
        List<Long> pids = new ArrayList<>();
        Process agent = agents.get(node);
        pids.add(agent.pid());
        agent.descendants().forEach(h -> pids.add(h.pid()));
        long postmaster = postmasterPid(node);
        if (postmaster > 0) {
            pids.add(postmaster);
            pids.addAll(Procs.children(postmaster));
        }
        return pids;
    }

    private long postmasterPid(String node) {
        try {
            Path dataDir = base.resolve(node);
            Path pidFile = dataDir.resolve("postmaster.pid");
            if (!Files.exists(pidFile)) {
                return -1;
            }
            long pid = Long.parseLong(Files.readAllLines(pidFile).get(0).trim());
            // a stale pid file of a killed node: only a live postmaster of this data directory counts
            String cmdline = Files.readString(Path.of("/proc", Long.toString(pid), "cmdline"))
                    .replace('\0', ' ');
            return cmdline.contains(dataDir.toString()) ? pid : -1;
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    @Override
    public void kill(String node) {
        for (long pid : processes(node)) {
            Procs.signal(pid, "KILL");
        }
    }

    @Override
    public void freeze(String node, boolean frozen) {
        if (frozen) {
            List<Long> pids = processes(node);
            this.frozen.put(node, pids);
            for (long pid : pids) {
                Procs.signal(pid, "STOP");
            }
        } else {
            for (long pid : this.frozen.getOrDefault(node, List.of())) {
                Procs.signal(pid, "CONT");
            }
            this.frozen.remove(node);
        }
    }

    @Override
    public void switchover() {
        String leader = primary();
        if (leader == null) {
            throw new IllegalStateException("switchover: no primary answers");
        }
        String candidate = ports.keySet().stream()
                .filter(n -> !n.equals(leader))
                .findFirst()
                .orElseThrow();
        patronictl("switchover", "--leader", leader, "--candidate", candidate, "--force");
    }

    @Override
    public String state() {
        StringBuilder s = new StringBuilder();
        for (Map.Entry<String, Integer> e : ports.entrySet()) {
            s.append("node ").append(e.getKey()).append(": ");
            try (Connection c = HaCluster.connect(e.getValue(), "postgres");
                    Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery(
                            "SELECT CASE WHEN pg_is_in_recovery() THEN 'standby, last checkpoint on "
                                    + "timeline ' || (SELECT timeline_id FROM pg_control_checkpoint()) ELSE 'primary on timeline ' || "
                                    + "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END")) {
                rs.next();
                s.append(rs.getString(1)).append('\n');
            } catch (SQLException ex) {
                s.append("not answering (").append(ex.getMessage()).append(")\n");
            }
        }
        Procs.Result list =
                Procs.tryRun(CMD, "patronictl", "-c", base.resolve("a.yml").toString(), "list");
        return s + list.output() + "\nlogs in " + base;
    }

    private String patronictl(String... args) {
        List<String> cmd = new ArrayList<>(
                List.of("patronictl", "-c", base.resolve("a.yml").toString()));
        cmd.addAll(List.of(args));
        Procs.Result r = Procs.tryRun(CMD, cmd.toArray(String[]::new));
        if (r.code() != 0) {
            throw new IllegalStateException(String.join(" ", cmd) + " -> exit " + r.code() + ": " + r.output());
        }
        return r.output();
    }

    private static int get(String url) {
        try {
            return HTTP.send(
                            HttpRequest.newBuilder(URI.create(url))
                                    .timeout(Duration.ofSeconds(2))
                                    .GET()
                                    .build(),
                            HttpResponse.BodyHandlers.discarding())
                    .statusCode();
        } catch (IOException e) {
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }

    @Override
    public void close() {
        for (String node : agents.keySet()) {
            List<Long> pids = new ArrayList<>(frozen.getOrDefault(node, List.of()));
            pids.addAll(processes(node));
            for (long pid : pids) {
                Procs.signal(pid, "CONT");
            }
            for (long pid : pids) {
                Procs.signal(pid, "KILL");
            }
        }
        for (Process p : agents.values()) {
            try {
                p.waitFor();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        ServerProcess.kill(etcd);
        if (!Boolean.getBoolean("pglease.ha.keep")) {
            PgServer.deleteBase(base);
        }
    }
}
