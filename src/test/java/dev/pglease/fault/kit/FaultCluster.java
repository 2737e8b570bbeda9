package dev.pglease.fault.kit;

import dev.pglease.fault.CheckReport;
import dev.pglease.fault.Checker;
import dev.pglease.fault.FaultKind;
import dev.pglease.fault.FaultRecord;
import dev.pglease.fault.History;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * A Postgres cluster (optionally with a standby), N candidate nodes each behind its own {@link TcpProxy}, the
 * {@link Monitor}, and the faults, each recorded in the {@link History}. Closing it kills every process it started
 * (by PID), resumes and stops Postgres, and removes its directories, also after a failed test.
 */
public final class FaultCluster implements AutoCloseable {

    /** Replication layout. */
    public enum Replication {
        NONE,
        ASYNC,
        SYNC
    }

    /** What a cluster is made of. */
    public static final class Options {
        int nodes = 3;
        String nodeMain = Schemas.nodeCommandAvailable() ? "dev.pglease.cli.Main" : RefNode.class.getName();
        List<String> extraNodeArgs = new ArrayList<>();
        Map<Integer, List<String>> perNodeArgs = new LinkedHashMap<>();
        Map<Integer, String> perNodeMain = new LinkedHashMap<>();
        Map<Integer, List<String>> perNodeProgram = new LinkedHashMap<>();
        long leaseMs = 1200;
        long renewDeadlineMs = 700;
        long retryMs = 250;
        long workIntervalMs = 50;
        long writeHoldMs = 20;
        long leaseRowHoldMs;
        String work = "fenced-counter";
        Replication replication = Replication.NONE;
        Map<String, String> pgSettings = new LinkedHashMap<>();
        boolean netnsForFirstNode;
        boolean termsOff;
        String managedUrl;
        String externalHost;
        int externalPort;
        String externalUser;
        String externalPassword;
        int shards;
        int initialMembers;

        /**
         * A group run: every node is a member of one lease group of {@code shards} shards ({@code --group
         * fault-group --shards N}); {@link #nodes} is the number of member slots, of which {@code initialMembers} run
         * at the start. Members join and leave as faults ({@link FaultCluster#join}, {@link FaultCluster#leave}).
         */
        public Options group(int shards, int initialMembers) {
            if (shards < 1 || initialMembers < 1) {
                throw new IllegalArgumentException(
                        "a group run needs shards and members, got " + shards + " and " + initialMembers);
            }
            this.shards = shards;
            this.initialMembers = initialMembers;
            return this;
        }

        boolean grouped() {
            return shards > 0;
        }

        /** Use a database the kit did not start (e.g. a Testcontainers container): no Postgres faults. */
        public Options external(String host, int port, String user, String password) {
            externalHost = host;
            externalPort = port;
            externalUser = user;
            externalPassword = password;
            return this;
        }

        public Options nodes(int n) {
            nodes = n;
            return this;
        }

        public Options nodeMain(String mainClass) {
            nodeMain = mainClass;
            return this;
        }

        /** Runs one node (0-based) with another entry point, e.g. a {@link RefNode} variant beside pglease nodes. */
        public Options nodeMain(int node, String mainClass) {
            perNodeMain.put(node, mainClass);
            return this;
        }

        String mainOf(int node) {
            return perNodeMain.getOrDefault(node, nodeMain);
        }

        /**
         * Runs one node (0-based) as {@code program}: a candidate in another language that speaks the node command's
         * contract (JSON lines on stdout, SIGTERM releases, the same options) and takes a libpq connection string
         * ({@code --dsn}) where the JVM node takes {@code --jdbc-url}. It gets the options of the contract only: the JVM
         * node's fault-injection options (ticker rate, writers, write hold, suspend file) do not apply to it, nor do
         * {@link #extraNodeArgs} ({@link #nodeArgs} do).
         */
        public Options program(int node, List<String> program) {
            if (program.isEmpty()) {
                throw new IllegalArgumentException("the program of node " + node + " must not be empty");
            }
            perNodeProgram.put(node, List.copyOf(program));
            return this;
        }

        boolean isProgram(int node) {
            return perNodeProgram.containsKey(node);
        }

        public Options refNodes() {
            return nodeMain(RefNode.class.getName());
        }

        public Options extraNodeArgs(String... args) {
            extraNodeArgs.addAll(List.of(args));
            return this;
        }

        /** Extra arguments for one node (0-based). */
        public Options nodeArgs(int node, String... args) {
            perNodeArgs.computeIfAbsent(node, k -> new ArrayList<>()).addAll(List.of(args));
            return this;
        }

        public Options timing(long leaseMs, long renewDeadlineMs, long retryMs) {
            this.leaseMs = leaseMs;
            this.renewDeadlineMs = renewDeadlineMs;
            this.retryMs = retryMs;
            return this;
        }

        public Options workInterval(long ms) {
            workIntervalMs = ms;
            return this;
        }

        /** Work done inside each fenced transaction (keeps transactions open for the in-transaction stall). */
        public Options writeHold(long ms) {
            writeHoldMs = ms;
            return this;
        }

        /**
         * Negative-control aid: while the kit has a node stopped (any pause or suspend), it holds the lease row (see
         * {@link LeaseRowHold}), and keeps holding it {@code ms} after the node runs again, so that node's first renewal
         * after a pause waits that long instead of racing the node's other threads.
         */
        public Options leaseRowHeldAfterPause(long ms) {
            leaseRowHoldMs = ms;
            return this;
        }

        public Options work(String w) {
            work = w;
            return this;
        }

        public Options replication(Replication r) {
            replication = r;
            return this;
        }

        public Options pg(String key, String value) {
            pgSettings.put(key, value);
            return this;
        }

        /**
         * Use a cluster run by an HA manager: nodes and the monitor connect straight to this (multi-host) JDBC URL; the
         * caller injects the faults (through {@link FaultCluster#custom}).
         */
        public Options managed(String multiHostJdbcUrl) {
            managedUrl = multiHostJdbcUrl;
            return this;
        }

        /**
         * Test-only: the schema's term function always answers 1, as on a server that hides its timeline, so tokens are
         * the plain counter of a single server (the behaviour before term tokens), to show the checker still catches it.
         */
        public Options termsOff() {
            termsOff = true;
            return this;
        }

        public Options netnsForFirstNode(boolean on) {
            netnsForFirstNode = on;
            return this;
        }

        @Override
        public String toString() {
            return (grouped() ? "group of " + shards + " shards over " + nodes + " member slots, " : "") + leaseMs
                    + "/" + renewDeadlineMs + "/" + retryMs + " ms (lease/renew deadline/retry), "
                    + replication.name().toLowerCase() + " standby"
                    + (netnsForFirstNode ? ", n1 in a netns" : "") + (termsOff ? ", term tokens off" : "");
        }
    }

    private final Options o;
    private final History history = new History();
    private final Path base;
    private final Path logDir;
    private final String schema;
    private final String lease = "fault-lease";
    /** The group of a group run: shard k is the lease {@code fault-group/k}. */
    private final String group = "fault-group";

    private GroupMonitor groupMonitor;
    /** Member slots whose node the kit stopped on purpose (a member that left): not restarted by supervision. */
    private final java.util.Set<NodeProcess> retired = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** For each fault that hit a member: the shards it held on the database then, with their tokens. */
    private final Map<Long, Map<Integer, Long>> hitShards = new java.util.concurrent.ConcurrentHashMap<>();

    private PgServer primary;
    private PgServer standby;
    private int pgSeq;
    private final List<TcpProxy> proxies = new ArrayList<>();
    private final List<NodeProcess> nodes = new ArrayList<>();
    private final Map<Integer, Double> rates = new java.util.concurrent.ConcurrentHashMap<>();
    private final Map<Integer, Integer> writers = new java.util.concurrent.ConcurrentHashMap<>();
    private NetNs netns;
    private TcpProxy netnsProxy;
    private Path dbClockFile;
    private long dbClockOffsetMs;
    private Monitor monitor;
    private final List<AutoCloseable> closeables = new ArrayList<>();
    private volatile boolean closed;
    private final Thread shutdownHook = new Thread(this::closeQuietly, "fault-cluster-cleanup");

    private FaultCluster(Options o) {
        this.o = o;
        this.base = PgServer.newBaseDir();
        try {
            this.logDir = Files.createDirectories(Path.of(
                    System.getProperty("pglease.buildDirectory", "target"),
                    "fault-logs",
                    base.getFileName().toString()));
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
        this.schema = "pglf_" + Long.toString(System.nanoTime() % 1_000_000_000L, 36);
    }

    /** Starts everything; on failure, cleans up what was started and rethrows. */
    public static FaultCluster start(Options o) {
        FaultCluster c = new FaultCluster(o);
        // if the test JVM is stopped (SIGTERM, Ctrl-C), still kill the nodes and stop Postgres
        Runtime.getRuntime().addShutdownHook(c.shutdownHook);
        try {
            c.boot();
            return c;
        } catch (RuntimeException | Error e) {
            c.close();
            throw e;
        }
    }

    private Map<String, String> pgSettings(boolean isPrimary) {
        Map<String, String> m = PgServer.defaults();
        if (o.replication == Replication.SYNC && isPrimary) {
            // synchronous_standby_names is set once the standby is attached (see newStandby)
            m.put("synchronous_commit", "remote_apply");
        }
        m.putAll(o.pgSettings);
        return m;
    }

    private String dbHost() {
        return o.externalHost != null ? o.externalHost : "127.0.0.1";
    }

    private int dbPort() {
        return o.externalHost != null ? o.externalPort : primary.port();
    }

    /** JDBC URL of the current primary, straight (not through a proxy). */
    public String dbUrl() {
        if (o.managedUrl != null) {
            return o.managedUrl;
        }
        return o.externalHost != null ? externalUrl(o.externalHost, o.externalPort) : primary.jdbcUrl();
    }

    private String externalUrl(String host, int port) {
        return "jdbc:postgresql://" + host + ":" + port + "/postgres?user=" + o.externalUser + "&password="
                + o.externalPassword + "&connectTimeout=10&socketTimeout=10";
    }

    private void boot() {
        if (o.externalHost == null && o.managedUrl == null) {
            Map<String, String> env = Map.of();
            if (FakeTime.available()) {
                dbClockFile = base.resolve("db-clock-offset");
                FakeTime.writeOffset(dbClockFile, 0);
                env = FakeTime.serverEnv(dbClockFile);
            }
            primary = PgServer.init(base, "pg" + (pgSeq++), pgSettings(true), env);
            primary.awaitReady(true, Duration.ofSeconds(30));
        }
        Schemas.prepare(dbUrl(), schema);
        if (o.termsOff) {
            Schemas.termsOff(dbUrl(), schema);
        }
        if (o.replication != Replication.NONE) {
            standby = newStandby();
        }
        if (o.netnsForFirstNode) {
            netns = NetNs.create();
            netnsProxy = new TcpProxy(netns.hostIp(), dbHost(), dbPort());
        }
        for (int i = 0; i < o.nodes; i++) {
            boolean inNs = i == 0 && netns != null;
            String url;
            if (o.managedUrl != null) {
                if (o.isProgram(i)) {
                    throw new IllegalStateException(
                            "node " + (i + 1) + " runs a program, which needs a database the kit "
                                    + "reaches through its proxies, not a managed multi-host URL");
                }
                url = o.managedUrl + "&connectTimeout=5&socketTimeout=" + Math.max(5, 3 * o.leaseMs / 1000)
                        + "&tcpKeepAlive=true";
            } else {
                TcpProxy p = inNs ? netnsProxy : new TcpProxy("127.0.0.1", dbHost(), dbPort());
                proxies.add(p);
                String host = inNs ? netns.hostIp() : "127.0.0.1";
                url = o.isProgram(i) ? nodeDsn(host, p.port()) : nodeUrl(host, p.port());
            }
            NodeProcess.Spec spec = o.isProgram(i)
                    ? NodeProcess.Spec.program(
                            o.perNodeProgram.get(i),
                            nodeArgs(i, url),
                            Map.of("TMPDIR", logDir.toString()),
                            0,
                            inNs ? netns.name() : null)
                    : new NodeProcess.Spec(o.mainOf(i), nodeArgs(i, url), Map.of(), 0, inNs ? netns.name() : null);
            NodeProcess n = new NodeProcess("n" + (i + 1), spec, history, logDir);
            nodes.add(n);
            if (o.grouped() && i >= o.initialMembers) {
                retired.add(n);
            } else {
                n.start();
            }
        }
        for (NodeProcess n : nodes) {
            if (!retired.contains(n) && !n.awaitStarted(180_000)) {
                throw new IllegalStateException(
                        n.name() + " did not start: " + n.recentOutput() + "\nstderr in " + logDir);
            }
        }
        if (o.grouped()) {
            groupMonitor = new GroupMonitor(history, dbUrl(), schema, group, 40);
        } else {
            monitor = new Monitor(history, dbUrl(), schema, lease, 40);
        }
        Thread loadSampler = new Thread(
                () -> {
                    while (!closed) {
                        sampleLoad();
                        PgServer.sleep(1000);
                    }
                },
                "fault-load-sampler");
        loadSampler.setDaemon(true);
        loadSampler.start();
        Thread canary = new Thread(this::canary, "fault-lag-canary");
        canary.setDaemon(true);
        canary.setPriority(Thread.NORM_PRIORITY);
        canary.start();
    }

    /**
     * Measures the machine's scheduling lag: a thread that asks to wake every {@value #CANARY_PERIOD_MS} ms records
     * how late it woke. The checker adds the largest lateness seen during a failover window (capped) to that window's
     * bound, and prints it beside the measurement.
     */
    private void canary() {
        while (!closed) {
            long before = System.nanoTime();
            PgServer.sleep(CANARY_PERIOD_MS);
            long lateMs = (System.nanoTime() - before) / 1_000_000 - CANARY_PERIOD_MS;
            history.addLag(System.currentTimeMillis(), Math.max(0, lateMs));
        }
    }

    private static final long CANARY_PERIOD_MS = 20;

    private TcpProxy replicationProxy;

    /** The proxy the standby replicates through (blackhole it to cut replication off). */
    public TcpProxy replicationProxy() {
        return replicationProxy;
    }

    private PgServer newStandby() {
        if (replicationProxy != null) {
            replicationProxy.close();
        }
        replicationProxy = new TcpProxy("127.0.0.1", primary.port());
        Map<String, String> s = pgSettings(false);
        s.put("synchronous_standby_names", "''");
        s.remove("synchronous_commit");
        // reconnect to a restarted primary at once: with a synchronous standby, commits wait until it is back
        s.put("wal_retrieve_retry_interval", "'100ms'");
        PgServer sb = primary.standby("pg" + (pgSeq++), s, replicationProxy.port());
        sb.awaitReady(false, Duration.ofSeconds(30));
        if (o.replication == Replication.SYNC) {
            primary.alterSystem(Map.of("synchronous_standby_names", "'*'"));
        }
        return sb;
    }

    private String nodeUrl(String host, int port) {
        long sock = Math.max(5, 3 * o.leaseMs / 1000);
        String user = o.externalHost != null ? o.externalUser + "&password=" + o.externalPassword : "postgres";
        return "jdbc:postgresql://" + host + ":" + port + "/postgres?user=" + user + "&connectTimeout=10&socketTimeout="
                + sock + "&tcpKeepAlive=true";
    }

    /** The libpq connection string of a program node (see {@link Options#program}). */
    private String nodeDsn(String host, int port) {
        String dsn = "host=" + host + " port=" + port + " dbname=postgres connect_timeout=10 user="
                + (o.externalHost != null ? conninfoValue(o.externalUser) : "postgres");
        return o.externalHost != null && o.externalPassword != null
                ? dsn + " password=" + conninfoValue(o.externalPassword)
                : dsn;
    }

    private static String conninfoValue(String v) {
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'";
    }

    /** The arguments of a program node: the options of the node command's contract, with {@code --dsn}. */
    private List<String> programArgs(int i, String dsn) {
        List<String> a = new ArrayList<>(List.of(
                "--dsn",
                dsn,
                "--lease",
                lease,
                "--schema",
                schema,
                "--lease-duration",
                o.leaseMs + "ms",
                "--renew-deadline",
                o.renewDeadlineMs + "ms",
                "--retry-period",
                o.retryMs + "ms",
                "--work",
                o.work,
                "--work-interval",
                o.workIntervalMs + "ms",
                "--holder-label",
                "n" + (i + 1),
                "--trace"));
        a.addAll(o.perNodeArgs.getOrDefault(i, List.of()));
        return a;
    }

    private void requireJvm(NodeProcess n, String what) {
        if (!n.spec().jvm()) {
            throw new IllegalArgumentException(n.name() + " runs " + n.spec().program() + ", which has no " + what
                    + " option: only JVM nodes take it");
        }
    }

    private List<String> nodeArgs(int i, String url) {
        if (o.isProgram(i)) {
            return programArgs(i, url);
        }
        List<String> a = new ArrayList<>(List.of("node", "--jdbc-url", url));
        a.addAll(
                o.grouped()
                        ? List.of("--group", group, "--shards", Integer.toString(o.shards))
                        : List.of("--lease", lease));
        a.addAll(List.of(
                "--schema",
                schema,
                "--lease-duration",
                o.leaseMs + "ms",
                "--renew-deadline",
                o.renewDeadlineMs + "ms",
                "--retry-period",
                o.retryMs + "ms",
                "--work",
                o.work,
                "--work-interval",
                o.workIntervalMs + "ms",
                "--holder-label",
                "n" + (i + 1),
                "--trace"));
        double tickerRate = rates.getOrDefault(i, 1.0);
        if (tickerRate != 1.0) {
            a.addAll(List.of("--ticker-rate", Double.toString(tickerRate)));
        }
        if (!o.mainOf(i).equals(RefNode.class.getName())) {
            a.addAll(List.of(
                    "--write-hold",
                    o.writeHoldMs + "ms",
                    "--writers",
                    Integer.toString(writers.getOrDefault(i, 1)),
                    "--suspend-file",
                    suspendFile(i).toString()));
        }
        a.addAll(o.extraNodeArgs);
        a.addAll(o.perNodeArgs.getOrDefault(i, List.of()));
        return a;
    }

    // ---- accessors ----

    public History history() {
        return history;
    }

    public List<NodeProcess> nodes() {
        return nodes;
    }

    public NodeProcess node(int i) {
        return nodes.get(i);
    }

    public TcpProxy proxy(NodeProcess n) {
        return proxies.get(nodes.indexOf(n));
    }

    public PgServer primary() {
        return primary;
    }

    public PgServer standby() {
        return standby;
    }

    public Monitor monitor() {
        return monitor;
    }

    /** The group run's monitor (null in a run with one lease). */
    public GroupMonitor groupMonitor() {
        return groupMonitor;
    }

    /** The group a group run checks (null in a run with one lease). */
    public dev.pglease.fault.GroupChecker.Group groupUnderTest() {
        return o.grouped() ? new dev.pglease.fault.GroupChecker.Group(group, o.shards) : null;
    }

    /** A group run: the member slots whose node runs (or should: supervision restarts it). */
    public List<NodeProcess> running() {
        List<NodeProcess> out = new ArrayList<>();
        for (NodeProcess n : nodes) {
            if (!retired.contains(n)) {
                out.add(n);
            }
        }
        return out;
    }

    /** A group run: the member slots with no node running (members that left). */
    public List<NodeProcess> vacant() {
        List<NodeProcess> out = new ArrayList<>();
        for (NodeProcess n : nodes) {
            if (retired.contains(n)) {
                out.add(n);
            }
        }
        return out;
    }

    public String schema() {
        return schema;
    }

    public Options options() {
        return o;
    }

    public Path logDir() {
        return logDir;
    }

    /** Timing for the checker: the bound of invariant 7 adds only the scheduling lag measured in each window. */
    public Checker.Config checkerConfig() {
        return new Checker.Config(o.leaseMs, o.retryMs);
    }

    /** The machine's load averages and core count, as absolute figures (from /proc/loadavg). */
    public static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return "load average " + f[0] + " " + f[1] + " " + f[2] + " (1/5/15 min) on "
                    + Runtime.getRuntime().availableProcessors() + " cores";
        } catch (java.io.IOException e) {
            return "load average unknown (" + e.getMessage() + ")";
        }
    }

    public double maxLoad() {
        return maxLoad;
    }

    private volatile double maxLoad;

    private void sampleLoad() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            maxLoad = Math.max(maxLoad, Double.parseDouble(f[0]));
        } catch (java.io.IOException | RuntimeException ignored) {
            // not Linux: no allowance
        }
    }

    /** Effective timing, for reports. */
    public String describeTiming() {
        return o + ", max load " + String.format("%.2f", maxLoad) + " on "
                + Runtime.getRuntime().availableProcessors()
                + " cores, max scheduling lag " + history.maxLag() + " ms: liveness bound "
                + checkerConfig().livenessBoundMs() + " ms + the lag measured in each window (at most "
                + Checker.LAG_CAP_MS + " ms)";
    }

    /** The node that holds the lease according to the last monitor read, if it is alive and not paused. */
    /**
     * The node that leads: the database lists it as holder, and it reports itself elected with the token the database
     * shows. A node the row names without knowing it (an acquire whose answer was lost) is not a leader to hit.
     */
    public NodeProcess leader() {
        if (groupMonitor != null) {
            List<NodeProcess> m = owningMembers();
            return m.isEmpty() ? null : m.get(0);
        }
        Long t = monitor.token();
        String h = monitor.heldBy();
        if (h == null || t == null || !t.equals(monitor.token())) {
            return null;
        }
        for (NodeProcess n : nodes) {
            if (h.equals(n.holder()) && n.alive() && !n.paused() && t.equals(n.leaderToken())) {
                return n;
            }
        }
        return null;
    }

    /**
     * A group run: the running, unpaused members that hold shards on the database and report owning shards
     * themselves, the one with the most shards first.
     */
    public List<NodeProcess> owningMembers() {
        List<NodeProcess> out = new ArrayList<>();
        for (NodeProcess n : nodes) {
            if (n.alive()
                    && !n.paused()
                    && n.holder() != null
                    && !retired.contains(n)
                    && !groupMonitor.shardsOf(n.holder()).isEmpty()
                    && !n.ownedLeases().isEmpty()) {
                out.add(n);
            }
        }
        out.sort(java.util.Comparator.comparingInt(
                        (NodeProcess n) -> -groupMonitor.shardsOf(n.holder()).size())
                .thenComparing(NodeProcess::name));
        return out;
    }

    /** Whether a fault on {@code n} takes a leader away: the lease's leader, or in a group run a member with shards. */
    private boolean hits(NodeProcess n) {
        if (groupMonitor != null) {
            return n.holder() != null && !groupMonitor.shardsOf(n.holder()).isEmpty();
        }
        return n == leader();
    }

    public NodeProcess awaitLeader(long timeoutMs) {
        long until = System.currentTimeMillis() + timeoutMs;
        while (System.currentTimeMillis() < until) {
            NodeProcess l = leader();
            if (l != null) {
                return l;
            }
            PgServer.sleep(20);
        }
        return null;
    }

    /** Waits for a grant with a token above {@code token} (held by a live node); returns the time it was seen. */
    public long awaitNewLeader(Long token, long timeoutMs) {
        long until = System.currentTimeMillis() + timeoutMs;
        while (System.currentTimeMillis() < until) {
            Long t = monitor.token();
            if (monitor.heldBy() != null && t != null && (token == null || t > token) && leader() != null) {
                return System.currentTimeMillis();
            }
            PgServer.sleep(10);
        }
        return -1;
    }

    /**
     * After a fault that took the leader away: waits until a node other than the fault's leader was granted the
     * lease, or the longest bound passed, so that the next fault does not land inside this failover window. The
     * window opens later when the database still renewed the leader's grant after the fault (as the checker sees it),
     * so the wait does too.
     */
    public void awaitFailover(FaultRecord f) {
        if (f == null || !f.leaderLoss()) {
            return;
        }
        if (groupMonitor != null) {
            awaitShardsTaken(f);
            return;
        }
        long maxBound = checkerConfig().maxLivenessBoundMs();
        long until = f.startMs() + maxBound + 200;
        while (System.currentTimeMillis() < until) {
            String h = monitor.heldBy();
            Long t = monitor.token();
            if (h != null
                    && !h.equals(f.leaderHolder())
                    && (f.leaderToken() == null || (t != null && t > f.leaderToken()))) {
                PgServer.sleep(100); // the node's own report of the grant follows the database row
                return;
            }
            long renewedMs = monitor.expiresMs() - o.leaseMs;
            if (h != null
                    && h.equals(f.leaderHolder())
                    && renewedMs > f.startMs()
                    && renewedMs < f.startMs() + maxBound) {
                until = Math.max(until, renewedMs + maxBound + 200);
            }
            PgServer.sleep(10);
        }
    }

    /**
     * A group run: waits until every shard the fault's member held is held by another member, or the longest bound
     * of invariant 9 passed.
     */
    private void awaitShardsTaken(FaultRecord f) {
        Map<Integer, Long> shards = hitShards.getOrDefault(f.index(), Map.of());
        long until = f.startMs()
                + o.leaseMs
                + o.retryMs
                + dev.pglease.fault.GroupChecker.SLACK_MS
                + dev.pglease.fault.Checker.LAG_CAP_MS
                + 200;
        while (System.currentTimeMillis() < until) {
            Map<Integer, GroupMonitor.Row> rows = groupMonitor.rows();
            boolean all = true;
            for (Map.Entry<Integer, Long> e : shards.entrySet()) {
                GroupMonitor.Row r = rows.get(e.getKey());
                if (r == null || !r.held() || r.holder().equals(f.leaderHolder()) || r.token() <= e.getValue()) {
                    all = false;
                    break;
                }
            }
            if (all) {
                PgServer.sleep(100); // the members' own reports follow the database rows
                return;
            }
            PgServer.sleep(10);
        }
    }

    /**
     * Restarts nodes that exited on their own (the node command exits when the database is unreachable at start-up,
     * as a service under a supervisor would), like a supervisor with restart=always.
     */
    public void superviseNodes() {
        for (NodeProcess n : nodes) {
            if (!n.alive() && !retired.contains(n)) {
                n.start();
            }
        }
    }

    /**
     * A node other than {@code except} that is up: started, not paused, talking (a line on stdout within the last few
     * retry periods: with --trace a standby reports every acquire attempt), and whose monotonic clock runs at least at
     * the true rate. A standby on a slowed ticker waits out a lease for longer than the lease (at rate 0.5, twice as
     * long), so it can not be held to the failover bound.
     */
    public boolean healthyStandby(NodeProcess except) {
        long now = System.currentTimeMillis();
        for (NodeProcess n : nodes) {
            if (n != except
                    && n.alive()
                    && !retired.contains(n)
                    && !n.paused()
                    && n.holder() != null
                    && rates.getOrDefault(nodes.indexOf(n), 1.0) >= 1.0
                    && now - n.lastLineMs() < Math.max(2000, 8 * o.retryMs)) {
                return true;
            }
        }
        return false;
    }

    /** Waits (bounded) until some node other than {@code except} is up, restarting dead ones. */
    public boolean awaitHealthyStandby(NodeProcess except, long timeoutMs) {
        long until = System.currentTimeMillis() + timeoutMs;
        while (System.currentTimeMillis() < until) {
            superviseNodes();
            if (healthyStandby(except)) {
                return true;
            }
            PgServer.sleep(50);
        }
        return false;
    }

    /** Any node other than the leader, or null. */
    public NodeProcess someStandby(java.util.Random rnd) {
        NodeProcess l = leader();
        List<NodeProcess> c = new ArrayList<>();
        for (NodeProcess n : nodes) {
            if (n != l && n.alive() && !n.paused()) {
                c.add(n);
            }
        }
        return c.isEmpty() ? null : c.get(rnd.nextInt(c.size()));
    }

    // ---- faults: each records a FaultRecord; blocking ones heal before they return ----

    /**
     * Records a fault. It counts as a leader loss (for invariant 7) only if some other node was up and campaigning
     * when it was injected: with every standby down or still starting, no failover can be expected.
     */
    private FaultRecord begin(FaultKind kind, String target, boolean leaderLoss, NodeProcess leader) {
        boolean measurable = leaderLoss && healthyStandby(leader);
        if (groupMonitor != null) {
            Map<Integer, Long> held = new java.util.TreeMap<>();
            if (leader != null) {
                groupMonitor.rows().forEach((shard, r) -> {
                    if (r.held() && r.holder().equals(leader.holder())) {
                        held.put(shard, r.token());
                    }
                });
            }
            FaultRecord f = history.addFault(new FaultRecord(
                    0,
                    kind,
                    target,
                    System.currentTimeMillis(),
                    -1,
                    measurable,
                    leader == null ? null : leader.holder(),
                    null));
            hitShards.put(f.index(), held);
            return f;
        }
        return history.addFault(new FaultRecord(
                0,
                kind,
                target,
                System.currentTimeMillis(),
                -1,
                measurable,
                leader == null ? null : leader.holder(),
                leader == null ? null : leader.leaderToken() != null ? leader.leaderToken() : monitor.token()));
    }

    private FaultRecord end(FaultRecord f) {
        history.healFault(f, System.currentTimeMillis());
        return f;
    }

    /** SIGSTOP a node for {@code holdMs}, then SIGCONT. */
    public FaultRecord pause(NodeProcess n, long holdMs, FaultKind kind) {
        boolean isLeader = hits(n);
        FaultRecord f = begin(kind, n.name(), isLeader && holdMs > o.leaseMs, isLeader ? n : null);
        n.pause();
        LeaseRowHold hold = holdLeaseRowIfAsked();
        PgServer.sleep(holdMs);
        resume(n, hold);
        return end(f);
    }

    private LeaseRowHold holdLeaseRowIfAsked() {
        return o.leaseRowHoldMs > 0 && !o.grouped() ? LeaseRowHold.take(dbUrl(), schema, lease) : null;
    }

    private void resume(NodeProcess n, LeaseRowHold hold) {
        n.resume();
        if (hold != null) {
            PgServer.sleep(o.leaseRowHoldMs);
            hold.close();
        }
    }

    /** Pauses the leader right after its next request reached the server (between request and reply). */
    public FaultRecord pauseInFlight(NodeProcess n, long holdMs) {
        TcpProxy p = proxy(n);
        long pid = n.pid();
        FaultRecord f = begin(FaultKind.PAUSE_IN_FLIGHT, n.name(), holdMs > o.leaseMs, n);
        p.onNextRequest(() -> {
            if (pid == n.pid()) {
                n.pause();
            }
        });
        long until = System.currentTimeMillis() + Math.max(500, o.retryMs * 3);
        while (!n.paused() && System.currentTimeMillis() < until) {
            PgServer.sleep(2);
        }
        p.onNextRequest(null);
        if (!n.paused()) {
            n.pause(); // no request in time: plain pause
        }
        LeaseRowHold hold = holdLeaseRowIfAsked();
        PgServer.sleep(holdMs);
        resume(n, hold);
        return end(f);
    }

    /** kill -9; the node is restarted (new incarnation) by {@link #restart}. */
    public FaultRecord kill(NodeProcess n, FaultKind kind) {
        boolean isLeader = hits(n);
        FaultRecord f = begin(kind, n.name(), isLeader, isLeader ? n : null);
        n.kill();
        return end(f);
    }

    /** SIGTERM: graceful release. */
    public FaultRecord stop(NodeProcess n) {
        boolean isLeader = hits(n);
        FaultRecord f = begin(FaultKind.STOP_LEADER, n.name(), isLeader, isLeader ? n : null);
        n.stop(10_000);
        return end(f);
    }

    /** A group run: a member joins: the node of a vacant slot starts (waits until it reported its start). */
    public FaultRecord join(NodeProcess n) {
        FaultRecord f = begin(FaultKind.MEMBER_JOIN, n.name(), false, null);
        retired.remove(n);
        if (!n.alive()) {
            n.start();
        }
        n.awaitStarted(60_000);
        return end(f);
    }

    /** A group run: a member leaves: SIGTERM (it hands its shards over and exits), and its slot stays vacant. */
    public FaultRecord leave(NodeProcess n) {
        boolean hit = hits(n);
        FaultRecord f = begin(FaultKind.MEMBER_LEAVE, n.name(), hit, hit ? n : null);
        retired.add(n);
        n.stop(10_000);
        return end(f);
    }

    /** A group run: the slot of a node that crashed stays vacant (not restarted) until a member joins in it. */
    public void retire(NodeProcess n) {
        retired.add(n);
    }

    /**
     * A group run: waits until the group has settled, and records the outcome in the history (invariants 10 and
     * 11 read it): every node the kit runs is up and a live member, no other holder is a live member, each member's own
     * report of its shards matches the database, and neither the members nor any shard's owner changed for
     * {@code quietMs}. Gives up after {@code timeoutMs}, recording why.
     */
    public dev.pglease.fault.GroupRecords.Settle awaitSettled(long faultIndex, long quietMs, long timeoutMs) {
        long until = System.currentTimeMillis() + timeoutMs;
        dev.pglease.fault.GroupRecords.Snapshot stable = null;
        long stableSince = 0;
        String why = "the group was never read";
        while (System.currentTimeMillis() < until) {
            superviseNodes();
            long now = System.currentTimeMillis();
            dev.pglease.fault.GroupRecords.Snapshot s = groupMonitor.snapshot();
            String notYet = null;
            java.util.Set<String> runningHolders = new java.util.TreeSet<>();
            for (NodeProcess n : running()) {
                if (!n.alive() || n.paused() || n.holder() == null) {
                    notYet = n.name() + " is not up";
                    break;
                }
                runningHolders.add(n.holder());
            }
            if (notYet == null && (s == null || now - groupMonitor.lastOkMs() > 1000)) {
                notYet = "the monitor can not read the group";
            }
            if (notYet == null) {
                java.util.Set<String> members = new java.util.TreeSet<>();
                s.members().forEach(m -> members.add(m.holder()));
                if (!members.equals(runningHolders)) {
                    notYet = "the live members " + members + " are not the running nodes " + runningHolders;
                }
            }
            if (notYet == null) {
                for (NodeProcess n : running()) {
                    java.util.Set<String> reported = n.ownedLeases();
                    java.util.Set<String> onDb = new java.util.TreeSet<>();
                    groupMonitor.shardsOf(n.holder()).forEach(k -> onDb.add(group + "/" + k));
                    if (!reported.equals(onDb)) {
                        notYet = n.name() + " reports owning " + reported.size() + " shards, the database lists "
                                + onDb.size();
                        break;
                    }
                }
            }
            if (notYet != null) {
                why = notYet;
                stable = null;
            } else if (stable == null || !s.sameAs(stable)) {
                stable = s;
                stableSince = now;
                why = "the group changed less than " + quietMs + " ms before";
            } else if (now - stableSince >= quietMs) {
                dev.pglease.fault.GroupRecords.Settle done =
                        new dev.pglease.fault.GroupRecords.Settle(now, faultIndex, true, s, null);
                history.addSettle(done);
                return done;
            }
            PgServer.sleep(20);
        }
        dev.pglease.fault.GroupRecords.Settle failed = new dev.pglease.fault.GroupRecords.Settle(
                System.currentTimeMillis(), faultIndex, false, groupMonitor.snapshot(), why);
        history.addSettle(failed);
        return failed;
    }

    /** Starts a new incarnation of a node (after kill or stop); does not wait for it to come up. */
    public void restart(NodeProcess n) {
        if (n.alive()) {
            n.stop(10_000);
        }
        n.start();
    }

    /** Restarts a node with another ticker rate (a clock running fast or slow); 1.0 puts it back. */
    public FaultRecord tickerRate(NodeProcess n, double rate) {
        requireJvm(n, "--ticker-rate");
        FaultRecord f =
                begin(rate > 1 ? FaultKind.TICKER_FAST : FaultKind.TICKER_SLOW, n.name() + " x" + rate, false, null);
        int i = nodes.indexOf(n);
        rates.put(i, rate);
        restartWithArgs(n);
        return end(f);
    }

    /**
     * Restarts a node with another ticker rate for {@code holdMs}, then at the true rate again (a group member on a
     * fast or slow clock for a while: each restart is a leave and a join).
     */
    public FaultRecord tickerRateFor(NodeProcess n, double rate, long holdMs) {
        requireJvm(n, "--ticker-rate");
        FaultRecord f = begin(
                rate > 1 ? FaultKind.TICKER_FAST : FaultKind.TICKER_SLOW,
                n.name() + " x" + rate + " for " + holdMs + " ms",
                false,
                null);
        int i = nodes.indexOf(n);
        rates.put(i, rate);
        restartWithArgs(n);
        n.awaitStarted(60_000);
        PgServer.sleep(holdMs);
        rates.put(i, 1.0);
        restartWithArgs(n);
        return end(f);
    }

    private void restartWithArgs(NodeProcess n) {
        String url = argValue(n.spec().args(), n.spec().jvm() ? "--jdbc-url" : "--dsn");
        n.stop(10_000);
        n.spec(n.spec().withArgs(nodeArgs(nodes.indexOf(n), url)));
        n.start();
    }

    /** Restarts a node with {@code count} concurrent fenced writer threads (1 puts it back). */
    public FaultRecord concurrentWriters(NodeProcess n, int count) {
        requireJvm(n, "--writers");
        FaultRecord f = begin(FaultKind.CONCURRENT_WRITERS, n.name() + " x" + count, false, null);
        writers.put(nodes.indexOf(n), count);
        restartWithArgs(n);
        return end(f);
    }

    /**
     * Pauses the leader while one of its fenced transactions is open (its session is "idle in transaction" on the
     * server), for {@code holdMs}. Returns null, injecting nothing, if no open transaction was seen within a second.
     */
    public FaultRecord stallInFencedTransaction(NodeProcess n, long holdMs) {
        long until = System.currentTimeMillis() + 1000;
        try (java.sql.Connection c = java.sql.DriverManager.getConnection(dbUrl());
                java.sql.PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM pg_stat_activity WHERE"
                        + " application_name = ? AND state = 'idle in transaction'")) {
            ps.setString(1, applicationName(n));
            while (System.currentTimeMillis() < until) {
                try (java.sql.ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    if (rs.getLong(1) > 0) {
                        FaultRecord f = begin(FaultKind.STALL_IN_FENCED_TXN, n.name(), holdMs > o.leaseMs, n);
                        n.pause();
                        LeaseRowHold hold = holdLeaseRowIfAsked();
                        PgServer.sleep(holdMs);
                        resume(n, hold);
                        return end(f);
                    }
                }
            }
        } catch (java.sql.SQLException e) {
            throw new IllegalStateException("cannot watch pg_stat_activity", e);
        }
        return null;
    }

    private static String applicationName(NodeProcess n) {
        return "pglease-node-" + n.name();
    }

    private Path suspendFile(int node) {
        return logDir.resolve("n" + (node + 1) + ".suspend");
    }

    /**
     * A simulated system suspend of the leader: the node is told (through its suspend file) that its monotonic clock
     * stops from a moment 300 ms ahead for {@code holdMs}, and is SIGSTOPped for exactly that time; when it runs
     * again its monotonic clock has not moved while the wall clock and the database's have.
     */
    public FaultRecord suspend(NodeProcess n, long holdMs) {
        // on the monotonic clock every process shares: a node restarted with a skewed wall clock reads it right
        long start = System.nanoTime() + 300_000_000L;
        try {
            Files.writeString(suspendFile(nodes.indexOf(n)), start + " " + holdMs);
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
        PgServer.sleep(Math.max(0, (start - System.nanoTime()) / 1_000_000));
        boolean isLeader = hits(n);
        FaultRecord f = begin(FaultKind.SUSPEND_LEADER, n.name(), isLeader && holdMs > o.leaseMs, isLeader ? n : null);
        n.pause();
        LeaseRowHold hold = holdLeaseRowIfAsked();
        PgServer.sleep(Math.max(0, (start - System.nanoTime()) / 1_000_000 + holdMs));
        resume(n, hold);
        return end(f);
    }

    /** Cancels armed one-shot proxy faults that did not fire. */
    public void disarmProxies() {
        proxies.forEach(TcpProxy::disarmAnswerDrop);
    }

    /** Terminates every server session of the node (its lease, notification and fence connections). */
    public FaultRecord terminateBackends(NodeProcess n) {
        FaultRecord f = begin(FaultKind.PG_TERMINATE, n.name(), false, null);
        try (java.sql.Connection c = java.sql.DriverManager.getConnection(dbUrl());
                java.sql.PreparedStatement ps = c.prepareStatement("SELECT count(pg_terminate_backend(pid)) FROM"
                        + " pg_stat_activity WHERE application_name = ?")) {
            ps.setString(1, applicationName(n));
            ps.executeQuery().close();
        } catch (java.sql.SQLException e) {
            throw new IllegalStateException("pg_terminate_backend failed", e);
        }
        return end(f);
    }

    /**
     * kill -9 the leader; just before its lease expires on the database, arm every standby's proxy to drop the answer
     * to the next request and reset the connection: the standby's acquire commits on the server, the standby never
     * learns it (a grant nobody knows it holds).
     */
    public FaultRecord resetAfterCommit(NodeProcess leader) {
        long expires = groupMonitor != null ? latestExpiry(leader) : monitor.expiresMs();
        FaultRecord f = begin(FaultKind.RESET_AFTER_COMMIT, "proxies of the standbys", true, leader);
        leader.kill();
        PgServer.sleep(Math.max(0, Math.min(o.leaseMs, expires - System.currentTimeMillis() - 20)));
        for (NodeProcess n : nodes) {
            if (n != leader) {
                proxy(n).resetAfterNextAnswer();
            }
        }
        return end(f);
    }

    /** The latest expiry (epoch ms, database clock) of the shards {@code n} holds, or of its member row. */
    private long latestExpiry(NodeProcess n) {
        long latest = groupMonitor.memberExpiries().getOrDefault(n.holder(), 0L);
        for (GroupMonitor.Row r : groupMonitor.rows().values()) {
            if (r.held() && r.holder().equals(n.holder())) {
                latest = Math.max(latest, r.expiresMs());
            }
        }
        return latest;
    }

    /** Restarts a node with its wall clock {@code skewMs} off (libfaketime); the ticker is not touched. */
    public FaultRecord wallClockSkew(NodeProcess n, long skewMs) {
        FaultRecord f = begin(
                FaultKind.WALL_CLOCK_SKEW, n.name() + " " + (skewMs >= 0 ? "+" : "") + skewMs + "ms", false, null);
        n.stop(10_000);
        Map<String, String> env = new java.util.HashMap<>(skewMs == 0 ? Map.of() : FakeTime.env(skewMs));
        if (!n.spec().jvm()) {
            env.put("TMPDIR", logDir.toString()); // a program killed with SIGKILL leaves its temporary files there
        }
        n.spec(n.spec().withSkew(env, skewMs));
        n.start();
        return end(f);
    }

    private static String argValue(List<String> args, String key) {
        int i = args.indexOf(key);
        return i < 0 ? null : args.get(i + 1);
    }

    /** A fault injected by the caller (e.g. docker pause of a container): inject, hold, heal, recorded. */
    public FaultRecord custom(FaultKind kind, String target, Runnable inject, long holdMs, Runnable heal) {
        FaultRecord f = begin(kind, target, false, null);
        inject.run();
        PgServer.sleep(holdMs);
        heal.run();
        return end(f);
    }

    /** Whether the database server's clock can be stepped (the kit started it under libfaketime). */
    public boolean canStepDbClock() {
        return dbClockFile != null;
    }

    /**
     * Steps the database server's clock by {@code deltaMs} (negative: backwards), holds, and steps it back. Each step
     * happens while the kit holds an exclusive lock on every table the checker reads timestamps from, and is recorded
     * with the highest id of each, so the checker knows which rows carry which offset (see {@code DbClock}).
     */
    public FaultRecord dbClockStep(long deltaMs, long holdMs) {
        if (dbClockFile == null) {
            throw new IllegalStateException("the database clock can not be stepped: libfaketime is not installed or the"
                    + " kit did not start the database");
        }
        FaultRecord[] f = new FaultRecord[1];
        stepDbClock(
                deltaMs,
                () -> f[0] = begin(
                        FaultKind.DB_CLOCK_STEP,
                        primary.name() + " " + (deltaMs >= 0 ? "+" : "") + deltaMs + "ms",
                        false,
                        null));
        PgServer.sleep(holdMs);
        stepDbClock(-deltaMs, () -> {});
        return end(f[0]);
    }

    private void stepDbClock(long deltaMs, Runnable whileLocked) {
        String s = schema;
        try (java.sql.Connection c = java.sql.DriverManager.getConnection(primary.jdbcUrl());
                java.sql.Statement st = c.createStatement()) {
            c.setAutoCommit(false);
            st.execute("SET LOCAL lock_timeout = '10s'");
            st.execute("LOCK TABLE " + s + ".leases, " + s + ".lease_events, " + s + ".fenced_counter, " + s
                    + ".fenced_counter_log, " + s + ".kit_lease_audit IN ACCESS EXCLUSIVE MODE");
            long lastEvent;
            long lastAccept;
            long lastVersion;
            long before;
            long realBefore = System.currentTimeMillis();
            try (java.sql.ResultSet rs = st.executeQuery("SELECT (SELECT coalesce(max(id), 0) FROM " + s
                    + ".lease_events), (SELECT coalesce(max(id), 0) FROM " + s + ".fenced_counter_log),"
                    + " (SELECT coalesce(max(id), 0) FROM " + s + ".kit_lease_audit),"
                    + " (extract(epoch FROM clock_timestamp()) * 1000)::bigint")) {
                rs.next();
                lastEvent = rs.getLong(1);
                lastAccept = rs.getLong(2);
                lastVersion = rs.getLong(3);
                before = rs.getLong(4);
            }
            whileLocked.run();
            long sent = System.currentTimeMillis();
            dbClockOffsetMs += deltaMs;
            FakeTime.writeOffset(dbClockFile, dbClockOffsetMs);
            history.addClockStep(sent, deltaMs * 1000, lastEvent, lastAccept, lastVersion);
            long after;
            try (java.sql.ResultSet rs =
                    st.executeQuery("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")) {
                rs.next();
                after = rs.getLong(1);
            }
            long moved = after - before - (System.currentTimeMillis() - realBefore);
            c.commit();
            if (Math.abs(moved - deltaMs) > 1000) {
                throw new IllegalStateException("stepped the database clock by " + deltaMs + " ms, but it moved "
                        + moved + " ms (libfaketime not in effect on the server?)");
            }
        } catch (java.sql.SQLException e) {
            throw new IllegalStateException("cannot step the database clock by " + deltaMs + " ms", e);
        }
    }

    public FaultRecord pgPause(long holdMs) {
        FaultRecord f = begin(FaultKind.PG_PAUSE, primary.name(), false, null);
        primary.pause();
        PgServer.sleep(holdMs);
        primary.resume();
        return end(f);
    }

    public FaultRecord pgCrash(long downMs) {
        FaultRecord f = begin(FaultKind.PG_CRASH, primary.name(), false, null);
        primary.crash();
        PgServer.sleep(downMs);
        primary.start();
        return end(f);
    }

    public FaultRecord pgRestart() {
        FaultRecord f = begin(FaultKind.PG_RESTART, primary.name(), false, null);
        primary.restartFast();
        return end(f);
    }

    public FaultRecord blackhole(NodeProcess n, long holdMs) {
        return connectionFault(n, holdMs, FaultKind.PROXY_BLACKHOLE, p -> p.blackhole(true), p -> {
            p.blackhole(false);
            p.resetAll(); // swallowed bytes broke the protocol stream
        });
    }

    public FaultRecord latency(NodeProcess n, long latencyMs, long holdMs) {
        return connectionFault(n, holdMs, FaultKind.PROXY_LATENCY, p -> p.latency(latencyMs), p -> p.latency(0));
    }

    private FaultRecord connectionFault(
            NodeProcess n, long holdMs, FaultKind kind, Consumer<TcpProxy> on, Consumer<TcpProxy> off) {
        boolean isLeader = hits(n);
        FaultRecord f = begin(kind, "proxy:" + n.name(), isLeader && holdMs > o.leaseMs, isLeader ? n : null);
        TcpProxy p = proxy(n);
        on.accept(p);
        PgServer.sleep(holdMs);
        off.accept(p);
        return end(f);
    }

    /** Resets the node's connections right after its next request was forwarded. */
    public FaultRecord resetMidStatement(NodeProcess n) {
        FaultRecord f = begin(FaultKind.PROXY_RESET, "proxy:" + n.name(), false, null);
        proxy(n).resetMidStatement();
        PgServer.sleep(Math.max(200, o.retryMs * 2));
        proxy(n).onNextRequest(null);
        return end(f);
    }

    /**
     * Makes {@code target} the leader by restarting the current leader (SIGTERM releases the lease; the other
     * standbys are paused meanwhile so that the target wins). Not a recorded fault: preparation for one. Returns
     * whether {@code target} leads afterwards.
     */
    public boolean moveLeadershipTo(NodeProcess target, long timeoutMs) {
        long until = System.currentTimeMillis() + timeoutMs;
        if (groupMonitor != null) {
            // a group member that runs holds shards once the group has settled: nothing to move
            while (System.currentTimeMillis() < until && !(target.alive() && hits(target))) {
                PgServer.sleep(20);
            }
            return target.alive() && hits(target);
        }
        while (System.currentTimeMillis() < until) {
            NodeProcess l = awaitLeader(Math.max(0, until - System.currentTimeMillis()));
            if (l == target) {
                return true;
            }
            if (l == null || !target.alive() || target.paused()) {
                return false;
            }
            List<NodeProcess> held = new ArrayList<>();
            for (NodeProcess n : nodes) {
                if (n != l && n != target && n.alive() && !n.paused()) {
                    n.pause();
                    held.add(n);
                }
            }
            l.stop(10_000);
            long wait = System.currentTimeMillis() + 3 * o.leaseMs;
            while (System.currentTimeMillis() < wait && leader() != target) {
                PgServer.sleep(10);
            }
            held.forEach(NodeProcess::resume);
            boolean moved = leader() == target;
            l.start(); // a new incarnation; not waited for
            if (moved) {
                return true;
            }
        }
        return leader() == target;
    }

    public boolean hasNetns() {
        return netns != null;
    }

    /** The node that runs in the network namespace (n1), or null without one. */
    public NodeProcess netnsNode() {
        return netns == null ? null : nodes.get(0);
    }

    /**
     * nft drop between the namespaced node (n1) and the host for {@code holdMs}. The caller makes n1 the leader first
     * ({@link #moveLeadershipTo}); if it still is not, the fault is recorded as not hitting a leader.
     */
    public FaultRecord partitionNetns(long holdMs) {
        NodeProcess n = nodes.get(0);
        boolean isLeader = hits(n);
        FaultRecord f = begin(
                FaultKind.NETNS_PARTITION, "netns:" + n.name(), isLeader && holdMs > o.leaseMs, isLeader ? n : null);
        netns.partition();
        PgServer.sleep(holdMs);
        netns.heal();
        return end(f);
    }

    /**
     * Kills the primary (SIGKILL of every server process), promotes the standby, and moves every proxy (a virtual IP)
     * and the monitor to it. With {@code newStandby}, a fresh standby of the new primary is built.
     */
    public FaultRecord failover(boolean newStandby) {
        Objects.requireNonNull(standby, "no standby");
        FaultKind kind = o.replication == Replication.SYNC ? FaultKind.FAILOVER_SYNC : FaultKind.FAILOVER_ASYNC;
        FaultRecord f = begin(kind, primary.name() + "->" + standby.name(), false, null);
        primary.kill9();
        PgServer old = primary;
        standby.resume();
        standby.promote();
        primary = standby;
        standby = null;
        primary.awaitReady(true, Duration.ofSeconds(30));
        if (o.replication == Replication.SYNC) {
            // keep the new primary synchronous once it has a standby again
            primary.alterSystem(Map.of("synchronous_standby_names", "''"));
        }
        for (TcpProxy p : proxies) {
            p.switchUpstream("127.0.0.1", primary.port());
        }
        if (groupMonitor != null) {
            groupMonitor.jdbcUrl(primary.jdbcUrl());
        } else {
            monitor.jdbcUrl(primary.jdbcUrl());
        }
        closeables.add(old);
        if (newStandby) {
            standby = newStandby();
        }
        return end(f);
    }

    // ---- end of run ----

    /** Stops every node gracefully, reads the database's own records, and checks the history. */
    public CheckReport finish() {
        for (NodeProcess n : nodes) {
            n.resume();
        }
        for (TcpProxy p : proxies) {
            p.blackhole(false);
            p.latency(0);
        }
        if (netns != null && netns.partitioned()) {
            netns.heal();
        }
        if (primary != null) {
            primary.resume();
        }
        for (NodeProcess n : nodes) {
            n.stop(15_000);
        }
        PgServer.sleep(200);
        if (groupMonitor != null) {
            groupMonitor.close();
        } else {
            monitor.close();
        }
        if (primary != null) {
            primary.awaitReady(true, Duration.ofSeconds(30));
        }
        if (groupMonitor != null) {
            groupMonitor.finalRead(dbUrl());
            groupMonitor.loadDatabaseRecords(dbUrl());
        } else {
            monitor.finalRead(dbUrl());
            monitor.loadDatabaseRecords(dbUrl());
        }
        CheckReport report = new Checker(checkerConfig(), groupUnderTest()).check(history);
        dumpHistory();
        return report;
    }

    /** Writes the whole history (operations, faults, database rows) to the run's log directory. */
    public Path dumpHistory() {
        Path file = logDir.resolve("history.txt");
        StringBuilder sb = new StringBuilder();
        long t0 = history.t0();
        for (FaultRecord f : history.faults()) {
            sb.append(f.render(t0)).append('\n');
        }
        history.ops().stream()
                .sorted(java.util.Comparator.comparingLong(dev.pglease.fault.Op::completeMs))
                .forEach(op -> sb.append(op.render(t0)).append('\n'));
        history.leaseEvents().forEach(e -> sb.append(e.render()).append('\n'));
        history.accepts().forEach(a -> sb.append(a.render()).append('\n'));
        try {
            Files.writeString(file, sb);
        } catch (java.io.IOException e) {
            throw new IllegalStateException(e);
        }
        return file;
    }

    private void closeQuietly() {
        try {
            close();
        } catch (RuntimeException ignored) {
            // best effort at JVM exit
        }
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException shuttingDown) {
            // called from the hook itself
        }
        List<Throwable> errors = new ArrayList<>();
        for (NodeProcess n : nodes) {
            run(errors, n::close);
        }
        if (monitor != null) {
            run(errors, monitor::close);
        }
        if (groupMonitor != null) {
            run(errors, groupMonitor::close);
        }
        for (TcpProxy p : proxies) {
            run(errors, p::close);
        }
        if (netns != null) {
            run(errors, netns::close);
        }
        if (replicationProxy != null) {
            run(errors, replicationProxy::close);
        }
        if (standby != null) {
            run(errors, standby::close);
        }
        if (primary != null) {
            run(errors, primary::close);
        }
        for (AutoCloseable c : closeables) {
            run(errors, c::close);
        }
        PgServer.deleteBase(base);
        if (!errors.isEmpty()) {
            IllegalStateException e = new IllegalStateException("cleanup failed");
            errors.forEach(e::addSuppressed);
            throw e;
        }
    }

    private interface Action {
        void run() throws Exception;
    }

    private static void run(List<Throwable> errors, Action a) {
        try {
            a.run();
        } catch (Exception | Error e) {
            errors.add(e);
        }
    }
}
