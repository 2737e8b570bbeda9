package dev.pglease.fault;

import dev.pglease.fault.kit.FakeTime;
import dev.pglease.fault.kit.FaultCluster;
import dev.pglease.fault.kit.NodeProcess;
import dev.pglease.fault.kit.PgServer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * A seeded randomized run: one fault at a time, drawn from every kind the machine supports, against a cluster of
 * 3-5 nodes, until a fault count or a time budget is reached. The same seed replays the same fault schedule
 * ({@code -Dpglease.fault.seed=N}); timings of the processes themselves of course differ.
 */
public final class RandomRun {

    /**
     * @param seed        random seed (printed)
     * @param targetFaults stop after this many faults
     * @param maxMs        or after this long
     */
    public record Plan(long seed, int targetFaults, long maxMs) {}

    private final FaultCluster c;
    private final Plan plan;
    private final Random rnd;
    private final long lease;
    private final List<FaultKind> kinds = new ArrayList<>();
    private final Map<FaultKind, Integer> weights = new EnumMap<>(FaultKind.class);
    private final Map<NodeProcess, Double> rates = new java.util.HashMap<>();
    private final Map<NodeProcess, Long> skews = new java.util.HashMap<>();
    private int injected;
    private final Map<FaultKind, Integer> injectedByKind = new EnumMap<>(FaultKind.class);
    private final Map<FaultKind, String> notInjected = new EnumMap<>(FaultKind.class);
    private final Map<FaultKind, String> unavailable = new EnumMap<>(FaultKind.class);

    public RandomRun(FaultCluster cluster, Plan plan) {
        this.c = cluster;
        this.plan = plan;
        this.rnd = new Random(plan.seed());
        this.lease = cluster.options() == null ? 1500 : cluster.checkerConfig().leaseDurationMs();
        weights.put(FaultKind.PAUSE_LEADER, 8);
        weights.put(FaultKind.PAUSE_NODE, 8);
        weights.put(FaultKind.PAUSE_IN_FLIGHT, 6);
        weights.put(FaultKind.KILL_LEADER, 5);
        weights.put(FaultKind.STOP_LEADER, 4);
        weights.put(FaultKind.KILL_NODE, 3);
        weights.put(FaultKind.PG_PAUSE, 6);
        weights.put(FaultKind.PG_CRASH, 5);
        weights.put(FaultKind.PG_RESTART, 3);
        weights.put(FaultKind.PROXY_BLACKHOLE, 6);
        weights.put(FaultKind.PROXY_LATENCY, 5);
        weights.put(FaultKind.PROXY_RESET, 8);
        if (cluster.hasNetns()) {
            weights.put(FaultKind.NETNS_PARTITION, 5);
        } else {
            unavailable.put(
                    FaultKind.NETNS_PARTITION,
                    "network namespaces or nft not usable here (needs root, iproute2," + " nftables)");
        }
        weights.put(FaultKind.TICKER_FAST, 2);
        weights.put(FaultKind.TICKER_SLOW, 2);
        if (FakeTime.available()) {
            weights.put(FaultKind.WALL_CLOCK_SKEW, 3);
        } else {
            unavailable.put(FaultKind.WALL_CLOCK_SKEW, "libfaketime not installed (apt-get install faketime)");
        }
        if (cluster.standby() != null) {
            weights.put(FaultKind.FAILOVER_SYNC, 1);
        } else {
            unavailable.put(FaultKind.FAILOVER_SYNC, "the cluster has no synchronous standby");
        }
        weights.put(FaultKind.STALL_IN_FENCED_TXN, 5);
        weights.put(FaultKind.CONCURRENT_WRITERS, 2);
        weights.put(FaultKind.PG_TERMINATE, 4);
        weights.put(FaultKind.RESET_AFTER_COMMIT, 4);
        weights.put(FaultKind.SUSPEND_LEADER, 4);
        if (cluster.canStepDbClock()) {
            weights.put(FaultKind.DB_CLOCK_STEP, 3);
        } else {
            unavailable.put(
                    FaultKind.DB_CLOCK_STEP,
                    FakeTime.available()
                            ? "the kit did not start the database"
                            : "libfaketime not installed (apt-get install faketime)");
        }
        kinds.addAll(weights.keySet());
    }

    /** How many nodes other than {@code n} run their ticker at the true rate or faster. */
    private int fullRateNodesBesides(NodeProcess n) {
        int count = 0;
        for (NodeProcess m : c.nodes()) {
            if (m != n && rates.getOrDefault(m, 1.0) >= 1.0) {
                count++;
            }
        }
        return count;
    }

    /** The kinds of the random mix that this machine can inject. */
    public List<FaultKind> kinds() {
        return List.copyOf(kinds);
    }

    /** Kinds of the random mix this machine can not inject, with the reason. */
    public Map<FaultKind, String> unavailable() {
        return unavailable;
    }

    /** Kinds that were drawn but could not be injected even once, with the reason of the last attempt. */
    public Map<FaultKind, String> notInjected() {
        Map<FaultKind, String> m = new EnumMap<>(notInjected);
        injectedByKind.keySet().forEach(m::remove);
        return m;
    }

    public Map<FaultKind, Integer> injectedByKind() {
        return injectedByKind;
    }

    /** Seed from -Dpglease.fault.seed, or a fresh one. */
    public static long seed() {
        String s = System.getProperty("pglease.fault.seed");
        return s == null || s.isBlank() ? new Random().nextLong() : Long.parseLong(s.trim());
    }

    public int injected() {
        return injected;
    }

    /** Injects the planned faults, then stops the nodes and checks the history. */
    public CheckReport run() {
        inject();
        return c.finish();
    }

    /**
     * Injects the planned faults: every kind once first, in seeded order (a kind that could not be injected is
     * retried up to three times), then weighted draws. Leaves the cluster running, so several seeds can share it.
     */
    public void inject() {
        long startMs = System.currentTimeMillis();
        progress("fault run: seed=" + plan.seed() + " (replay with -Dpglease.fault.seed=" + plan.seed() + "), nodes="
                + c.nodes().size() + ", kinds=" + kinds);
        if (c.awaitLeader(60_000) == null) {
            throw new IllegalStateException(
                    "no leader at start; node output:\n" + c.node(0).recentOutput());
        }
        // every kind once first (in seeded order), then weighted draws
        List<FaultKind> firstRound = new ArrayList<>(kinds);
        Collections.shuffle(firstRound, rnd);
        Map<FaultKind, Integer> attempts = new EnumMap<>(FaultKind.class);
        int total = weights.values().stream().mapToInt(Integer::intValue).sum();
        while (injected < plan.targetFaults() && System.currentTimeMillis() - startMs < plan.maxMs()) {
            FaultKind k;
            if (!firstRound.isEmpty()) {
                k = firstRound.remove(0);
            } else {
                int x = rnd.nextInt(total);
                k = null;
                for (FaultKind kind : kinds) {
                    x -= weights.get(kind);
                    if (x < 0) {
                        k = kind;
                        break;
                    }
                }
            }
            FaultRecord f;
            try {
                f = inject(k);
            } catch (NotInjected e) {
                notInjected.put(k, e.getMessage());
                if (attempts.merge(k, 1, Integer::sum) < 3 && !injectedByKind.containsKey(k)) {
                    firstRound.add(k);
                }
                settle(null);
                continue;
            }
            injected++;
            injectedByKind.merge(k, 1, Integer::sum);
            if (injected % 25 == 0) {
                progress("fault run: " + injected + " faults after " + (System.currentTimeMillis() - startMs) / 1000
                        + " s, " + c.history().ops().size() + " operations");
            }
            settle(f);
        }
        System.out.println("fault run: seed " + plan.seed() + ": " + injected + " faults in "
                + (System.currentTimeMillis() - startMs) / 1000 + " s");
    }

    /** A fault that could not be injected at this moment (for example no leader to hit). */
    static final class NotInjected extends RuntimeException {
        NotInjected(String why) {
            super(why, null, false, false);
        }
    }

    /** Progress on stdout and in the run's log directory (surefire buffers test output). */
    private void progress(String line) {
        System.out.println(line);
        try {
            java.nio.file.Files.writeString(
                    c.logDir().resolve("progress.txt"),
                    java.time.Instant.now() + " " + line + "\n",
                    java.nio.file.StandardOpenOption.CREATE,
                    java.nio.file.StandardOpenOption.APPEND);
        } catch (java.io.IOException ignored) {
            // progress is informational
        }
    }

    private long between(long lo, long hi) {
        return lo + (long) (rnd.nextDouble() * (hi - lo));
    }

    private NodeProcess anyNode() {
        List<NodeProcess> alive = new ArrayList<>();
        for (NodeProcess n : c.nodes()) {
            if (n.alive()) {
                alive.add(n);
            }
        }
        return alive.get(rnd.nextInt(alive.size()));
    }

    private FaultRecord inject(FaultKind k) {
        c.superviseNodes();
        NodeProcess leader = c.awaitLeader(lease * 3);
        if (k.livenessBounded() && leader != null) {
            // a failover needs a candidate: wait for one to be up (restarted JVMs take a moment)
            c.awaitHealthyStandby(leader, 30_000); // a restarted JVM can take long to start on a loaded machine
            leader = c.awaitLeader(lease * 3);
        }
        Long token = c.monitor().token();
        // draw the random parameters up front so a replay draws the same numbers whatever the timing
        long hold = between(lease + lease / 5, 2 * lease);
        long shortHold = between(50, lease * 6 / 10);
        long pgHold = between(200, 2 * lease);
        NodeProcess someNode = anyNode();
        NodeProcess standby = c.someStandby(rnd);
        double rateDraw = rnd.nextDouble();
        long skewDraw = between(-300_000, 300_000);
        long dbStep = (rnd.nextBoolean() ? 1 : -1) * between(lease / 2, 3 * lease);
        boolean needsLeader = switch (k) {
            case PAUSE_LEADER,
                    PAUSE_IN_FLIGHT,
                    KILL_LEADER,
                    STOP_LEADER,
                    PROXY_BLACKHOLE,
                    PROXY_LATENCY,
                    PROXY_RESET,
                    STALL_IN_FENCED_TXN,
                    PG_TERMINATE,
                    RESET_AFTER_COMMIT,
                    NETNS_PARTITION,
                    SUSPEND_LEADER -> true;
            default -> false;
        };
        if (needsLeader && leader == null) {
            throw new NotInjected("no live leader within " + lease * 3 + " ms");
        }
        if (needsLeader) {
            // a failover can only be measured when another candidate is up and campaigning (restarted JVMs take a
            // while)
            c.awaitHealthyStandby(leader, 30_000);
        }
        FaultRecord f;
        switch (k) {
            case PAUSE_LEADER -> f = c.pause(leader, hold, FaultKind.PAUSE_LEADER);
            case PAUSE_NODE -> f = c.pause(someNode, shortHold, FaultKind.PAUSE_NODE);
            case PAUSE_IN_FLIGHT -> f = c.pauseInFlight(leader, hold);
            case KILL_LEADER -> {
                f = c.kill(leader, FaultKind.KILL_LEADER);
                c.awaitFailover(f);
                c.restart(leader);
            }
            case STOP_LEADER -> {
                f = c.stop(leader);
                c.awaitFailover(f);
                c.restart(leader);
            }
            case RESET_AFTER_COMMIT -> {
                f = c.resetAfterCommit(leader);
                c.awaitFailover(f);
                c.restart(leader);
            }
            case STALL_IN_FENCED_TXN -> {
                f = c.stallInFencedTransaction(leader, hold);
                if (f == null) {
                    throw new NotInjected("the leader had no open fenced transaction within 1 s");
                }
            }
            case PG_TERMINATE -> f = c.terminateBackends(leader);
            case SUSPEND_LEADER -> f = c.suspend(leader, hold);
            case CONCURRENT_WRITERS -> {
                NodeProcess n = standby != null ? standby : someNode;
                f = c.concurrentWriters(n, writers.contains(n) && rateDraw < 0.5 ? 1 : 4);
                if (!writers.remove(n)) {
                    writers.add(n);
                }
            }
            case KILL_NODE -> {
                NodeProcess n = standby != null ? standby : someNode;
                f = c.kill(n, FaultKind.KILL_NODE);
                c.restart(n);
            }
            case PG_PAUSE -> f = c.pgPause(pgHold);
            case PG_CRASH -> f = c.pgCrash(shortHold);
            case PG_RESTART -> f = c.pgRestart();
            case PROXY_BLACKHOLE -> f = c.blackhole(leader, hold);
            case PROXY_LATENCY -> f = c.latency(leader, lease + shortHold, hold + lease);
            case PROXY_RESET -> f = c.resetMidStatement(leader);
            case NETNS_PARTITION -> {
                // the partition must cut off the leader: make the namespaced node lead first
                NodeProcess target = c.netnsNode();
                if (!c.moveLeadershipTo(target, 60_000)) {
                    throw new NotInjected("could not make " + target.name() + " (in the network namespace) the leader");
                }
                c.awaitHealthyStandby(target, 30_000);
                f = c.partitionNetns(hold);
            }
            case TICKER_FAST, TICKER_SLOW -> {
                NodeProcess n = standby != null ? standby : someNode;
                double rate = k == FaultKind.TICKER_FAST ? (rateDraw < 0.5 ? 1.5 : 2.0) : (rateDraw < 0.5 ? 0.75 : 0.5);
                if (rate < 1.0 && fullRateNodesBesides(n) < 2) {
                    // a standby on a slowed ticker waits out a lease for longer than the lease: two nodes stay at full
                    // rate
                    // (or faster), so whichever of them leads, a standby that can be held to the failover bound remains
                    rate = 1.0 / rate;
                }
                rates.put(n, rate);
                f = c.tickerRate(n, rate);
            }
            case WALL_CLOCK_SKEW -> {
                NodeProcess n = standby != null ? standby : someNode;
                long skew = skews.containsKey(n) && rateDraw < 0.3 ? 0 : skewDraw;
                skews.put(n, skew);
                f = c.wallClockSkew(n, skew);
            }
            case FAILOVER_SYNC -> f = c.failover(true);
            case DB_CLOCK_STEP -> {
                f = c.dbClockStep(dbStep, pgHold);
                // a grant renewed while the clock ran ahead stays valid that much longer in real time: the next
                // failover
                // window would be measured against an expiry the database rightly waits for
                PgServer.sleep(Math.max(0, dbStep) + lease);
            }
            default -> throw new IllegalArgumentException(k.name());
        }
        return f;
    }

    private final java.util.Set<NodeProcess> writers = new java.util.HashSet<>();

    /**
     * After a fault: let its failover window close (a grant to another holder, or the longest bound), then wait for
     * a leader (bounded) and a short random quiet time, so that the next fault does not land inside the window.
     */
    private void settle(FaultRecord f) {
        c.awaitFailover(f);
        c.disarmProxies();
        c.superviseNodes();
        c.awaitLeader(c.checkerConfig().maxLivenessBoundMs() + 3000);
        PgServer.sleep(between(50, 250));
    }
}
