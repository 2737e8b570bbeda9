package dev.pglease.compare;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;

/**
 * Runs every backend side by side on one machine and fills each lane's {@link Results}. The backends' trials run
 * concurrently (one thread per backend), phase by phase, so the whole comparison fits in minutes; every store is
 * separate, so per-store requests and CPU are not mixed.
 */
final class Harness implements AutoCloseable {

    /** How much to run. */
    record Plan(
            String name,
            int candidates,
            int killTrials,
            int handoffTrials,
            int pauseTrials,
            long idleMs,
            long steadyMs,
            long loadMs,
            boolean storeLoss,
            long observeMs,
            long seed) {
        static Plan smoke() {
            int n = Integer.getInteger("compare.trials", 1);
            return new Plan("smoke", 3, n, n, n, 0, 3000, 0, Boolean.getBoolean("compare.storeLoss"), 3000, 42);
        }

        static Plan full() {
            return new Plan("full", 3, 20, 10, 6, 10_000, 30_000, 60_000, true, 6000, 42);
        }
    }

    final Path dir;
    final Plan plan;
    final Timings timings;
    final List<Lane> lanes = new ArrayList<>();
    final Map<String, Long> phaseMs = new LinkedHashMap<>();
    final List<String> notes = new ArrayList<>();
    final Random random;
    private final List<AutoCloseable> closeables = new ArrayList<>();
    private dev.pglease.testkit.CpuStarvation burners;
    EtcdCluster etcd;
    ZkEnsemble zk;
    PgStore resource;
    long startedAt;
    long finishedAt;
    String pg15Status = "not run";

    Harness(Path dir, Plan plan, Timings timings) {
        this.dir = dir;
        this.plan = plan;
        this.timings = timings;
        this.random = new Random(plan.seed());
    }

    static boolean pgleaseAvailable() {
        try {
            Class.forName("dev.pglease.PgLease");
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }

    /** pglease with fast failover runs in the full comparison, and in the smoke run with -Dcompare.fastFailover. */
    private boolean fastLane() {
        return pgleaseAvailable() && (plan.name().equals("full") || Boolean.getBoolean("compare.fastFailover"));
    }

    /** The settings each backend gets for the common timings, for the report. */
    static Map<String, String> settings(Timings t) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put(
                "pglease",
                "leaseDuration " + t.leaseMs() + " ms, renewDeadline " + t.renewMs() + " ms, retryPeriod " + t.retryMs()
                        + " ms; writes only while `Leadership.isValid()` (local deadline)");
        m.put(
                "pglease-fast",
                "as pglease, with `LeaseConfig.fastFailover(true)`: a standby waits on the holder's "
                        + "advisory lock and takes over (token + 1) as soon as the holder's database session ends");
        m.put(
                "etcd",
                "lease TTL " + Math.max(2, (t.leaseMs() + 999) / 1000) + " s (etcd minimum 2 s), jetcd keep-alive "
                        + "(sends every TTL/3; a broken stream is retried every " + t.retryMs()
                        + " ms and the lease counts as lost "
                        + "only when etcd says so or no keep-alive succeeded for a whole TTL, as in the Go client's session); "
                        + "campaign blocks on a watch, so standbys wake as soon as the key goes");
        m.put(
                "zookeeper",
                "session timeout " + t.leaseMs() + " ms (tickTime " + ZkEnsemble.TICK_MS + " ms; allowed "
                        + 2 * ZkEnsemble.TICK_MS + " to " + 20 * ZkEnsemble.TICK_MS + " ms), Curator LeaderLatch, "
                        + "connection timeout " + Math.max(1000, t.leaseMs() / 2) + " ms, SUSPENDED counts as lost");
        m.put(
                "shedlock",
                "lockAtMostFor " + t.leaseMs() + " ms, lockAtLeastFor 0, extend by " + t.leaseMs() + " ms every "
                        + t.retryMs() + " ms, standbys try every " + t.retryMs() + " ms, database time");
        m.put(
                "advisory",
                "pg_try_advisory_lock every " + t.retryMs() + " ms, holder pings its lock session every " + t.retryMs()
                        + " ms, idle_session_timeout " + t.leaseMs() + " ms on the lock session");
        return m;
    }

    // ------------------------------------------------------------------ setup

    void setUp() throws Exception {
        startedAt = System.currentTimeMillis();
        long t0 = System.currentTimeMillis();
        ExecutorService ex = Executors.newFixedThreadPool(3);
        try {
            Future<EtcdCluster> fe = ex.submit(() -> new EtcdCluster(dir.resolve("etcd"), 3));
            Future<ZkEnsemble> fz = ex.submit(() -> new ZkEnsemble(dir.resolve("zookeeper"), 3));
            Future<List<PgStore>> fp = ex.submit(() -> {
                List<PgStore> l = new ArrayList<>();
                List<String> stores = new ArrayList<>(List.of("resource", "pglease", "shedlock", "advisory"));
                if (fastLane()) {
                    stores.add("pglease-fast");
                }
                for (String s : stores) {
                    l.add(new PgStore(dir.resolve("pg-" + s), "embedded, store for " + s));
                }
                return l;
            });
            List<PgStore> pgs = collect(fp);
            etcd = collect(fe);
            zk = collect(fz);
            if (pgs == null || etcd == null || zk == null) {
                throw new IllegalStateException("a store did not start: " + startErrors);
            }
            resource = pgs.get(0);
            resource.exec(
                    "CREATE TABLE compare_fence(resource text PRIMARY KEY, token bigint NOT NULL)",
                    "CREATE TABLE compare_log(id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, resource text "
                            + "NOT NULL, holder text NOT NULL, token bigint, at timestamptz NOT NULL DEFAULT "
                            + "clock_timestamp())");
            String res = resource.jdbcUrl();
            if (pgleaseAvailable()) {
                PgleaseBackend.migrate(pgs.get(1).jdbcUrl());
                lanes.add(new Lane(
                        "pglease",
                        "pglease",
                        true,
                        "lease row token (grows by one per new holder)",
                        pgs.get(1),
                        res,
                        dir.resolve("lane-pglease"),
                        timings));
            } else {
                notes.add("pglease row missing: the core library (dev.pglease.PgLease) is not on the build path.");
            }
            lanes.add(new Lane(
                    "etcd",
                    "etcd + jetcd election",
                    true,
                    "leader key create revision",
                    etcd,
                    res,
                    dir.resolve("lane-etcd"),
                    timings));
            lanes.add(new Lane(
                    "zookeeper",
                    "ZooKeeper + Curator LeaderLatch",
                    true,
                    "latch node czxid",
                    zk,
                    res,
                    dir.resolve("lane-zookeeper"),
                    timings));
            createShedlockTable(pgs.get(2));
            lanes.add(new Lane(
                    "shedlock",
                    "ShedLock JDBC (extend)",
                    false,
                    "none",
                    pgs.get(2),
                    res,
                    dir.resolve("lane-shedlock"),
                    timings));
            lanes.add(new Lane(
                    "advisory",
                    "pg_try_advisory_lock",
                    false,
                    "none",
                    pgs.get(3),
                    res,
                    dir.resolve("lane-advisory"),
                    timings));
            // pglease with fast failover: in the full run, or in the smoke run on request (-Dcompare.fastFailover)
            if (fastLane()) {
                PgleaseBackend.migrate(pgs.get(4).jdbcUrl());
                lanes.add(new Lane(
                        "pglease-fast",
                        "pglease, fast failover",
                        true,
                        "lease row token (grows by one per new holder)",
                        pgs.get(4),
                        res,
                        dir.resolve("lane-pglease-fast"),
                        timings));
            }
            String only = System.getProperty("compare.backends", "");
            if (!only.isBlank()) {
                List<String> keep = List.of(only.split(","));
                lanes.removeIf(l -> !keep.contains(l.backend));
            }
            for (Lane l : lanes) {
                registerResource(l.lease);
                l.results.storeDescription = l.store.describe();
                l.results.requestCounter = l.store.requestCounterName();
            }
        } finally {
            ex.shutdownNow();
        }
        phaseMs.put("start stores", System.currentTimeMillis() - t0);
    }

    private final List<String> startErrors = new ArrayList<>();

    /** Waits for a store; on failure remembers why and closes whatever did start. */
    private <T> T collect(Future<T> f) throws InterruptedException {
        try {
            T t = f.get();
            if (t instanceof AutoCloseable c) {
                closeables.add(c);
            } else if (t instanceof List<?> l) {
                for (Object o : l) {
                    closeables.add((AutoCloseable) o);
                }
            }
            return t;
        } catch (java.util.concurrent.ExecutionException e) {
            startErrors.add(String.valueOf(e.getCause()));
            return null;
        }
    }

    static void createShedlockTable(PgStore pg) {
        pg.exec("CREATE TABLE IF NOT EXISTS shedlock(name VARCHAR(64) NOT NULL, lock_until TIMESTAMP NOT NULL, "
                + "locked_at TIMESTAMP NOT NULL, locked_by VARCHAR(255) NOT NULL, PRIMARY KEY (name))");
    }

    private void registerResource(String name) {
        resource.exec("INSERT INTO compare_fence VALUES ('" + name + "', 0) ON CONFLICT DO NOTHING");
    }

    // ------------------------------------------------------------------ phases

    final List<String> loadAverages = new ArrayList<>();

    /** The machine's load average now (the machine may be shared with other work). */
    static String loadAverage() {
        try {
            String[] f = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/loadavg"))
                    .trim()
                    .split(" ");
            return f[0] + " / " + f[1] + " / " + f[2];
        } catch (java.io.IOException | RuntimeException e) {
            return "unknown";
        }
    }

    void runAll() throws Exception {
        loadAverages.add(loadAverage());
        setUp();
        if (plan.idleMs() > 0) {
            phase("idle stores", this::idle);
        }
        phase("start candidates", this::startCandidates);
        phase("steady state", this::steady);
        phase(
                "kill -9 trials",
                () -> perLane(l -> {
                    for (int i = 0; i < plan.killTrials() && l.failed == null; i++) {
                        killTrial(l);
                    }
                }));
        phase(
                "graceful handoff trials",
                () -> perLane(l -> {
                    for (int i = 0; i < plan.handoffTrials() && l.failed == null; i++) {
                        handoffTrial(l);
                    }
                }));
        phase(
                "pause trials",
                () -> perLane(l -> {
                    for (int i = 0; i < plan.pauseTrials() && l.failed == null; i++) {
                        pauseTrial(l);
                    }
                }));
        if (plan.loadMs() > 0) {
            phase("CPU load", this::load);
        }
        if (plan.storeLoss()) {
            phase("store member loss (etcd, ZooKeeper)", this::storeLossConsensus);
            phase("Postgres primary loss (synchronous standby promoted)", this::storeLossPostgres);
        }
        finishedAt = System.currentTimeMillis();
    }

    interface Phase {
        void run() throws Exception;
    }

    private void phase(String name, Phase p) throws Exception {
        long t0 = System.currentTimeMillis();
        System.err.println("[compare] " + name + " ...");
        p.run();
        phaseMs.put(name, System.currentTimeMillis() - t0);
        loadAverages.add(loadAverage());
        System.err.println("[compare] " + name + " done in " + (System.currentTimeMillis() - t0) + " ms");
    }

    private void perLane(Consumer<Lane> body) throws Exception {
        ExecutorService ex = Executors.newFixedThreadPool(lanes.size());
        try {
            List<Future<?>> fs = new ArrayList<>();
            for (Lane l : lanes) {
                if (l.failed != null) {
                    continue;
                }
                fs.add(ex.submit((Callable<Void>) () -> {
                    try {
                        body.accept(l);
                    } catch (RuntimeException e) {
                        l.results.notes.add("phase failed: " + e);
                        e.printStackTrace();
                    }
                    return null;
                }));
            }
            for (Future<?> f : fs) {
                f.get();
            }
        } finally {
            ex.shutdownNow();
        }
    }

    private void idle() {
        Map<Lane, Long> c0 = new LinkedHashMap<>();
        for (Lane l : lanes) {
            c0.put(l, l.store.cpuTicks());
        }
        long t0 = System.currentTimeMillis();
        Os.sleep(plan.idleMs());
        long dt = System.currentTimeMillis() - t0;
        for (Lane l : lanes) {
            l.results.idleCpuPct = 100.0 * (l.store.cpuTicks() - c0.get(l)) * 1000.0 / Os.CLK_TCK / dt;
        }
    }

    private void startCandidates() throws Exception {
        for (int i = 0; i < plan.candidates(); i++) {
            for (Lane l : lanes) {
                l.spawn();
            }
        }
        perLane(l -> {
            if (!l.awaitReady(plan.candidates(), 60_000)) {
                l.failed = "no leader among " + plan.candidates() + " candidates within 60 s";
                l.results.notes.add(l.failed);
            }
        });
        Os.sleep(2 * timings.retryMs());
    }

    private void steady() {
        Map<Lane, long[]> s0 = new LinkedHashMap<>();
        long t0 = System.currentTimeMillis();
        for (Lane l : lanes) {
            s0.put(l, new long[] {l.store.requests(), l.store.cpuTicks()});
        }
        Os.sleep(plan.steadyMs() / 2);
        for (Lane l : lanes) {
            Results r = l.results;
            r.storeProcesses = l.store.pids().size();
            r.connections = Os.connectionsFrom(l.live.stream().map(c -> c.pid).toList(), l.store.clientPorts());
            r.storeRssMb = l.store.pids().stream().mapToLong(Os::rssKb).sum() / 1024;
            r.candidateRssMb =
                    l.live.stream().mapToLong(c -> Os.rssKb(c.pid)).sum() / 1024 / Math.max(1, l.live.size());
        }
        Os.sleep(plan.steadyMs() - plan.steadyMs() / 2);
        long t1 = System.currentTimeMillis();
        for (Lane l : lanes) {
            long[] a = s0.get(l);
            Results r = l.results;
            long dt = t1 - t0;
            r.requestsPerSec = (l.store.requests() - a[0]) * 1000.0 / dt;
            r.steadyCpuPct = 100.0 * (l.store.cpuTicks() - a[1]) * 1000.0 / Os.CLK_TCK / dt;
            r.steadyWindowMs = dt;
            r.steadyLeaderChanges = l.electedBetween(t0, t1);
        }
    }

    private long jitter() {
        synchronized (random) {
            return random.nextInt((int) timings.retryMs());
        }
    }

    private Lane.Cand currentLeader(Lane l) {
        if (!l.awaitReady(plan.candidates(), 30_000)) {
            l.failed = "no leader within 30 s before a trial";
            l.results.notes.add(l.failed);
            return null;
        }
        return l.leader();
    }

    private void killTrial(Lane l) {
        Os.sleep(500 + jitter());
        Lane.Cand leader = currentLeader(l);
        if (leader == null) {
            return;
        }
        long t0 = System.currentTimeMillis();
        l.kill(leader);
        Lane.Event e = l.awaitElected(t0, leader, 4 * timings.leaseMs() + 10_000);
        if (e == null) {
            l.results.killTimeouts++;
        } else {
            l.results.kill.add(e.t() - t0);
        }
        l.spawn();
    }

    private void handoffTrial(Lane l) {
        Os.sleep(500 + jitter());
        Lane.Cand leader = currentLeader(l);
        if (leader == null) {
            return;
        }
        java.util.concurrent.CompletableFuture<Long> exited =
                leader.process.onExit().thenApply(p -> System.currentTimeMillis());
        long t0 = System.currentTimeMillis();
        leader.process.destroy();
        Lane.Event e = l.awaitElected(t0, leader, 4 * timings.leaseMs() + 10_000);
        if (e == null) {
            l.results.handoffTimeouts++;
        } else {
            l.results.handoff.add(e.t() - t0);
        }
        l.stop(leader);
        try {
            l.results.handoffExit.add(exited.get(5, java.util.concurrent.TimeUnit.SECONDS) - t0);
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException ex) {
            l.results.notes.add("handoff: exit time of the old leader not observed");
        } catch (InterruptedException ex) {
            Thread.currentThread().interrupt();
        }
        l.spawn();
    }

    private void pauseTrial(Lane l) {
        Os.sleep(500 + jitter());
        Lane.Cand leader = currentLeader(l);
        if (leader == null) {
            return;
        }
        long pauseMs = 2 * timings.leaseMs();
        long t0 = System.currentTimeMillis();
        Os.signal(leader.pid, "STOP");
        Lane.Event e;
        try {
            e = l.awaitElected(t0, leader, pauseMs);
            Os.sleep(t0 + pauseMs - System.currentTimeMillis());
        } finally {
            Os.signal(leader.pid, "CONT");
        }
        long t1 = System.currentTimeMillis();
        Os.sleep(plan.observeMs());
        long t2 = System.currentTimeMillis();
        long takeover = e == null ? t1 : e.t();
        int attempts = 0;
        int rejected = 0;
        int errors = 0;
        for (Lane.Event w : l.eventsBetween(t0, t2)) {
            if (w.cand() != leader || !w.type().equals("write") || w.start() < takeover) {
                continue;
            }
            attempts++;
            switch (w.result()) {
                case "rejected" -> rejected++;
                case "accepted" -> {}
                default -> errors++;
            }
        }
        int accepted = e == null ? 0 : acceptedAfter(l.lease, leader.holder, e.cand().holder, t0);
        l.results.pauses.add(new Results.PauseTrial(e == null ? -1 : e.t() - t0, attempts, accepted, rejected, errors));
    }

    /**
     * From the resource's own log: writes by the ex-leader that the resource accepted after the new leader's first
     * accepted write (log order). A resource that checks a token must reject every one of them.
     */
    private int acceptedAfter(String resourceName, String oldHolder, String newHolder, long since) {
        try (java.sql.Connection c = resource.connect();
                java.sql.PreparedStatement ps = c.prepareStatement(
                        "SELECT count(*) FROM compare_log WHERE resource = ? AND holder = ? AND id > (SELECT min(id) "
                                + "FROM compare_log WHERE resource = ? AND holder = ? AND at >= to_timestamp(? / 1000.0))")) {
            ps.setString(1, resourceName);
            ps.setString(2, oldHolder);
            ps.setString(3, resourceName);
            ps.setString(4, newHolder);
            ps.setLong(5, since);
            try (java.sql.ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        } catch (java.sql.SQLException ex) {
            throw new IllegalStateException(ex);
        }
    }

    /** Nice value the candidates run at during the CPU-load phase (the busy loops run at 0). */
    static final int LOADED_NICE = dev.pglease.testkit.CpuStarvation.STARVED_NICE;

    private void load() {
        for (Lane l : lanes) {
            for (Lane.Cand c : l.live) {
                dev.pglease.testkit.CpuStarvation.renice(c.pid, LOADED_NICE);
            }
        }
        burners = dev.pglease.testkit.CpuStarvation.busyLoops(4);
        long t0 = System.currentTimeMillis();
        try {
            Os.sleep(plan.loadMs());
        } finally {
            burners.close();
            for (Lane l : lanes) {
                for (Lane.Cand c : l.live) {
                    dev.pglease.testkit.CpuStarvation.renice(c.pid, 0);
                }
            }
        }
        long t1 = System.currentTimeMillis();
        for (Lane l : lanes) {
            l.results.loadWindowMs = t1 - t0;
            l.results.loadLeaderChanges = l.electedBetween(t0, t1);
        }
        Os.sleep(2 * timings.retryMs());
    }

    private static final long OBSERVE_MS = 20_000;

    private void storeLossConsensus() throws Exception {
        perLane(l -> {
            if (l.store == etcd) {
                int idx = etcd.leaderIndex();
                consensusLoss(
                        l,
                        "etcd Raft leader member killed (kill -9), restarted after " + OBSERVE_MS / 1000 + " s",
                        () -> etcd.kill(idx),
                        () -> {
                            etcd.restart(idx);
                            etcd.awaitHealthy(java.time.Duration.ofSeconds(30));
                        });
            } else if (l.store == zk) {
                int idx = zk.leaderIndex();
                consensusLoss(
                        l,
                        "ZooKeeper leader server killed (kill -9), restarted after " + OBSERVE_MS / 1000 + " s",
                        () -> zk.kill(idx),
                        () -> {
                            zk.restart(idx);
                            zk.awaitHealthy(java.time.Duration.ofSeconds(60));
                        });
            }
        });
    }

    private void consensusLoss(Lane l, String what, Runnable kill, Runnable restore) {
        if (!l.awaitReady(plan.candidates(), 30_000)) {
            l.results.notes.add("store loss: no leader before the fault");
            return;
        }
        Os.sleep(2000);
        long t0 = System.currentTimeMillis();
        kill.run();
        Os.sleep(OBSERVE_MS);
        long t1 = System.currentTimeMillis();
        l.results.storeLoss.add(new Results.StoreLoss(what, l.electedBetween(t0, t1), l.longestWriteGap(t0, t1), ""));
        restore.run();
    }

    private void storeLossPostgres() throws Exception {
        String why = Pg15Pair.unavailableReason();
        List<Lane> pgLanes =
                lanes.stream().filter(l -> l.store instanceof PgStore).toList();
        if (pgLanes.isEmpty()) {
            return;
        }
        if (why != null) {
            pg15Status = "not run: " + why;
            for (Lane l : pgLanes) {
                l.results.notes.add("Postgres primary loss not measured: " + why);
            }
            return;
        }
        perLane(l -> {
            if (l.store instanceof PgStore) {
                l.stopAll();
            }
        });
        try (Pg15Pair pair = new Pg15Pair(dir.resolve("pg15"))) {
            PgStore primary = pair.primary();
            createShedlockTable(primary);
            if (pgleaseAvailable()) {
                PgleaseBackend.migrate(primary.jdbcUrl());
            }
            for (Lane l : pgLanes) {
                l.lease = "compare-" + l.backend + "-pg15";
                registerResource(l.lease);
                l.storeConnect = pair.multiHostUrl();
                for (int i = 0; i < plan.candidates(); i++) {
                    l.spawn();
                }
            }
            perLane(l -> {
                if (pgLanes.contains(l) && !l.awaitReady(plan.candidates(), 60_000)) {
                    l.results.notes.add("Postgres primary loss: no leader on the PostgreSQL 15 pair within 60 s");
                }
            });
            Os.sleep(3000);
            long t0 = System.currentTimeMillis();
            pair.killPrimary();
            pair.promoteStandby();
            long promoted = System.currentTimeMillis() - t0;
            Os.sleep(OBSERVE_MS);
            long t1 = System.currentTimeMillis();
            for (Lane l : pgLanes) {
                l.results.storeLoss.add(new Results.StoreLoss(
                        "PostgreSQL 15 primary killed (kill -9 of every "
                                + "process), synchronous standby promoted at once (promotion took " + promoted + " ms)",
                        l.electedBetween(t0, t1),
                        l.longestWriteGap(t0, t1),
                        ""));
            }
            pg15Status = "run";
            perLane(l -> {
                if (pgLanes.contains(l)) {
                    l.stopAll();
                }
            });
        }
    }

    @Override
    public void close() {
        if (burners != null) {
            burners.close();
        }
        for (Lane l : lanes) {
            l.destroyAll();
        }
        for (int i = closeables.size() - 1; i >= 0; i--) {
            try {
                closeables.get(i).close();
            } catch (Exception e) {
                System.err.println("close: " + e);
            }
        }
    }
}
