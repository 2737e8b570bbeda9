package dev.pglease.fault;

import dev.pglease.fault.kit.FakeTime;
import dev.pglease.fault.kit.FaultCluster;
import dev.pglease.fault.kit.NodeProcess;
import dev.pglease.fault.kit.PgServer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * A seeded randomized run against a lease group (a {@link FaultCluster} started with
 * {@link FaultCluster.Options#group}): one fault at a time, where "the leader" is a member that owns shards, and
 * members join (a node of a vacant slot starts) and leave (SIGTERM, the slot stays vacant) as faults of their own;
 * a member killed with kill -9 stays away until a later join. At least {@value #MIN_MEMBERS} members run at any
 * time: a fault that would leave fewer is preceded by a join, and a join with no vacant slot by a leave. After each
 * fault the run waits for the failover (the lost member's shards owned elsewhere), then for the group to settle,
 * which it records for the checker. The same seed replays the same schedule.
 */
public final class GroupRun {

    /** The fewest members that run at once: a lost member's shards need someone to go to. */
    public static final int MIN_MEMBERS = 2;

    /**
     * @param seed         random seed (printed)
     * @param targetFaults stop after this many faults (joins and leaves made to keep the members within bounds
     *                     count)
     * @param maxMs        or after this long
     * @param only         inject exactly these kinds once each, in seeded order, instead of every kind once then
     *                     weighted draws (null: the full mix)
     */
    public record Plan(long seed, int targetFaults, long maxMs, List<FaultKind> only) {
        public Plan(long seed, int targetFaults, long maxMs) {
            this(seed, targetFaults, maxMs, null);
        }
    }

    private final FaultCluster c;
    private final Plan plan;
    private final Random rnd;
    private final long lease;
    private final List<FaultKind> kinds = new ArrayList<>();
    private final Map<FaultKind, Integer> weights = new EnumMap<>(FaultKind.class);
    private final Map<FaultKind, Integer> injectedByKind = new EnumMap<>(FaultKind.class);
    private final Map<FaultKind, String> notInjected = new EnumMap<>(FaultKind.class);
    private final Map<FaultKind, String> unavailable = new EnumMap<>(FaultKind.class);
    private final Map<NodeProcess, Long> skews = new HashMap<>();
    private final Set<NodeProcess> writers = new HashSet<>();
    private int injected;
    private final List<Long> settleMs = new ArrayList<>();

    public GroupRun(FaultCluster cluster, Plan plan) {
        if (cluster.groupUnderTest() == null) {
            throw new IllegalArgumentException("a group run needs a cluster started with Options.group(...)");
        }
        this.c = cluster;
        this.plan = plan;
        this.rnd = new Random(plan.seed());
        this.lease = cluster.checkerConfig().leaseDurationMs();
        weights.put(FaultKind.MEMBER_JOIN, 8);
        weights.put(FaultKind.MEMBER_LEAVE, 6);
        weights.put(FaultKind.KILL_LEADER, 6);
        weights.put(FaultKind.PAUSE_LEADER, 7);
        weights.put(FaultKind.PAUSE_NODE, 6);
        weights.put(FaultKind.PAUSE_IN_FLIGHT, 5);
        weights.put(FaultKind.PG_PAUSE, 4);
        weights.put(FaultKind.PG_CRASH, 4);
        weights.put(FaultKind.PG_RESTART, 2);
        weights.put(FaultKind.PROXY_BLACKHOLE, 5);
        weights.put(FaultKind.PROXY_LATENCY, 4);
        weights.put(FaultKind.PROXY_RESET, 6);
        if (cluster.hasNetns()) {
            weights.put(FaultKind.NETNS_PARTITION, 4);
        } else {
            unavailable.put(
                    FaultKind.NETNS_PARTITION,
                    "network namespaces or nft not usable here (needs root, iproute2, nftables)");
        }
        weights.put(FaultKind.TICKER_FAST, 2);
        weights.put(FaultKind.TICKER_SLOW, 2);
        if (FakeTime.available()) {
            weights.put(FaultKind.WALL_CLOCK_SKEW, 2);
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
        weights.put(FaultKind.RESET_AFTER_COMMIT, 3);
        weights.put(FaultKind.SUSPEND_LEADER, 4);
        if (cluster.canStepDbClock()) {
            weights.put(FaultKind.DB_CLOCK_STEP, 2);
        } else {
            unavailable.put(
                    FaultKind.DB_CLOCK_STEP,
                    FakeTime.available()
                            ? "the kit did not start the database"
                            : "libfaketime not installed (apt-get install faketime)");
        }
        if (plan.only() != null) {
            for (FaultKind k : plan.only()) {
                if (!weights.containsKey(k)) {
                    throw new IllegalArgumentException("fault kind " + k + " is not in the group mix "
                            + weights.keySet() + (unavailable.containsKey(k) ? ": " + unavailable.get(k) : ""));
                }
            }
            kinds.addAll(plan.only());
        } else {
            kinds.addAll(weights.keySet());
        }
    }

    /** The kinds this run injects (the mix, or the plan's own list). */
    public List<FaultKind> kinds() {
        return List.copyOf(kinds);
    }

    /** Kinds of the mix this machine can not inject, with the reason. */
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

    public int injected() {
        return injected;
    }

    /** How long each wait for the group to settle took (after the failover wait), in milliseconds. */
    public List<Long> settleMs() {
        return settleMs;
    }

    /** Injects the planned faults, then stops the nodes and checks the history. */
    public CheckReport run() {
        inject();
        return c.finish();
    }

    /** Injects the planned faults and leaves the cluster running. */
    public void inject() {
        long startMs = System.currentTimeMillis();
        progress("group fault run: seed=" + plan.seed() + " (replay with -Dpglease.fault.seed=" + plan.seed()
                + "), member slots=" + c.nodes().size() + ", running="
                + c.running().size() + ", kinds=" + kinds);
        settle(null);
        List<FaultKind> firstRound = new ArrayList<>(kinds);
        Collections.shuffle(firstRound, rnd);
        Map<FaultKind, Integer> attempts = new EnumMap<>(FaultKind.class);
        int total = 0;
        for (FaultKind k : kinds) {
            total += weights.get(k);
        }
        while (injected < plan.targetFaults() && System.currentTimeMillis() - startMs < plan.maxMs()) {
            FaultKind k;
            if (!firstRound.isEmpty()) {
                k = firstRound.remove(0);
            } else if (plan.only() != null) {
                break;
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
            try {
                inject(k);
            } catch (RandomRun.NotInjected e) {
                notInjected.put(k, e.getMessage());
                if (attempts.merge(k, 1, Integer::sum) < 3 && !injectedByKind.containsKey(k)) {
                    firstRound.add(k);
                }
                settle(null);
                continue;
            }
            if (injected % 25 == 0) {
                progress("group fault run: " + injected + " faults after "
                        + (System.currentTimeMillis() - startMs) / 1000 + " s, "
                        + c.history().ops().size()
                        + " operations");
            }
        }
        System.out.println("group fault run: seed " + plan.seed() + ": " + injected + " faults in "
                + (System.currentTimeMillis() - startMs) / 1000 + " s");
    }

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

    private static <T> T pick(List<T> list, double draw) {
        return list.isEmpty() ? null : list.get(Math.min(list.size() - 1, (int) (draw * list.size())));
    }

    private boolean removesAMember(FaultKind k) {
        return k == FaultKind.MEMBER_LEAVE || k == FaultKind.KILL_LEADER || k == FaultKind.RESET_AFTER_COMMIT;
    }

    /** Injects {@code k} (after a join or leave that keeps the members within bounds), then settles. */
    private void inject(FaultKind k) {
        c.superviseNodes();
        // draw every random parameter up front, so that a replay draws the same numbers whatever the timing
        long hold = between(lease + lease / 5, 2 * lease);
        long shortHold = between(50, lease * 6 / 10);
        long pgHold = between(200, 2 * lease);
        long slowFor = between(2 * lease, 4 * lease);
        double who = rnd.nextDouble();
        double whoElse = rnd.nextDouble();
        double rateDraw = rnd.nextDouble();
        long skewDraw = between(-300_000, 300_000);
        long dbStep = (rnd.nextBoolean() ? 1 : -1) * between(lease / 2, 3 * lease);
        if (k == FaultKind.MEMBER_JOIN && c.vacant().isEmpty()) {
            record(FaultKind.MEMBER_LEAVE, c.leave(pick(c.running(), whoElse)));
        }
        if (removesAMember(k) && c.running().size() <= MIN_MEMBERS) {
            record(FaultKind.MEMBER_JOIN, c.join(pick(c.vacant(), whoElse)));
        }
        if (k == FaultKind.NETNS_PARTITION && !c.running().contains(c.netnsNode())) {
            record(FaultKind.MEMBER_JOIN, c.join(c.netnsNode()));
        }
        List<NodeProcess> owners = c.owningMembers();
        NodeProcess victim = pick(owners, who);
        boolean needsOwner = switch (k) {
            case PAUSE_LEADER,
                    PAUSE_IN_FLIGHT,
                    KILL_LEADER,
                    PROXY_BLACKHOLE,
                    PROXY_LATENCY,
                    PROXY_RESET,
                    STALL_IN_FENCED_TXN,
                    PG_TERMINATE,
                    RESET_AFTER_COMMIT,
                    SUSPEND_LEADER -> true;
            default -> false;
        };
        if (needsOwner && victim == null) {
            throw new RandomRun.NotInjected("no member owned shards (and reported them) at the moment");
        }
        if (needsOwner) {
            c.awaitHealthyStandby(victim, 30_000);
        }
        NodeProcess anyMember = pick(c.running(), who);
        FaultRecord f;
        switch (k) {
            case MEMBER_JOIN -> f = c.join(pick(c.vacant(), who));
            case MEMBER_LEAVE -> f = c.leave(anyMember);
            case KILL_LEADER -> {
                f = c.kill(victim, FaultKind.KILL_LEADER);
                c.retire(victim);
            }
            case RESET_AFTER_COMMIT -> {
                f = c.resetAfterCommit(victim);
                c.retire(victim);
            }
            case PAUSE_LEADER -> f = c.pause(victim, hold, FaultKind.PAUSE_LEADER);
            case PAUSE_NODE -> f = c.pause(anyMember, shortHold, FaultKind.PAUSE_NODE);
            case PAUSE_IN_FLIGHT -> f = c.pauseInFlight(victim, hold);
            case STALL_IN_FENCED_TXN -> {
                f = c.stallInFencedTransaction(victim, hold);
                if (f == null) {
                    throw new RandomRun.NotInjected("the member had no open fenced transaction within 1 s");
                }
            }
            case PG_TERMINATE -> f = c.terminateBackends(victim);
            case SUSPEND_LEADER -> f = c.suspend(victim, hold);
            case PG_PAUSE -> f = c.pgPause(pgHold);
            case PG_CRASH -> f = c.pgCrash(shortHold);
            case PG_RESTART -> f = c.pgRestart();
            case PROXY_BLACKHOLE -> f = c.blackhole(victim, hold);
            case PROXY_LATENCY -> f = c.latency(victim, lease + shortHold, hold + lease);
            case PROXY_RESET -> f = c.resetMidStatement(victim);
            case NETNS_PARTITION -> {
                NodeProcess target = c.netnsNode();
                if (!c.moveLeadershipTo(target, 30_000)) {
                    throw new RandomRun.NotInjected(target.name() + " (in the network namespace) owned no shard");
                }
                c.awaitHealthyStandby(target, 30_000);
                f = c.partitionNetns(hold);
            }
            case TICKER_FAST, TICKER_SLOW -> {
                // a member on a fast or slow clock for a while, then back to the true rate (each restart is a leave
                // and a join): a slow member takes its share of a lost member's shards at its own pace, so it does
                // not stay while other faults are measured
                double rate = k == FaultKind.TICKER_FAST ? (rateDraw < 0.5 ? 1.5 : 2.0) : (rateDraw < 0.5 ? 0.75 : 0.5);
                f = c.tickerRateFor(anyMember, rate, slowFor);
            }
            case WALL_CLOCK_SKEW -> {
                long skew = skews.containsKey(anyMember) && rateDraw < 0.3 ? 0 : skewDraw;
                skews.put(anyMember, skew);
                f = c.wallClockSkew(anyMember, skew);
            }
            case CONCURRENT_WRITERS -> {
                f = c.concurrentWriters(anyMember, writers.contains(anyMember) ? 1 : 4);
                if (!writers.remove(anyMember)) {
                    writers.add(anyMember);
                }
            }
            case FAILOVER_SYNC -> f = c.failover(true);
            case DB_CLOCK_STEP -> {
                f = c.dbClockStep(dbStep, pgHold);
                // a grant renewed while the clock ran ahead stays valid that much longer in real time
                PgServer.sleep(Math.max(0, dbStep) + lease);
            }
            default -> throw new IllegalArgumentException("not a fault of the group mix: " + k);
        }
        record(k, f);
    }

    private void record(FaultKind k, FaultRecord f) {
        injected++;
        injectedByKind.merge(k, 1, Integer::sum);
        settle(f);
    }

    /**
     * After a fault: waits for its failover (the lost member's shards owned elsewhere, or the longest bound), then
     * for the group to settle (recorded for invariants 10 and 11), then a short random quiet time.
     */
    private void settle(FaultRecord f) {
        c.awaitFailover(f);
        c.disarmProxies();
        long start = System.currentTimeMillis();
        GroupRecords.Settle s = c.awaitSettled(f == null ? -1 : f.index(), lease, 30_000);
        settleMs.add(System.currentTimeMillis() - start);
        if (!s.settled()) {
            progress("group fault run: the group did not settle after "
                    + (f == null ? "the start" : f.render(c.history().t0())) + ": " + s.why());
        }
        PgServer.sleep(between(50, 250));
    }
}
