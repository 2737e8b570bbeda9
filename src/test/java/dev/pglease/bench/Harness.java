package dev.pglease.bench;

import dev.pglease.BenchAccess;
import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseObserver;
import dev.pglease.PgLease;
import dev.pglease.cli.NodeProcess;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * The scenario benchmarks that JMH does not fit: handoff and failover times, a long run at short leases, the
 * statement rate of idle standbys, and renewal throughput at scale. Each scenario returns a Markdown section with
 * its table and the headline figures. {@code main("full")} is the documented full run; {@code main("smoke")} the
 * tiny version the default test run checks.
 */
public final class Harness {

    /** One scenario's output: a Markdown section and named figures (for checks and the summary). */
    public record Section(String title, String markdown, Map<String, Double> figures) {}

    /** Sizes of one run. */
    public record Sizes(
            int nodes,
            int soakNodes,
            int handoffs,
            int failovers1s,
            int failovers500ms,
            Duration soak,
            List<Integer> standbys,
            Duration standbyWindowLeases,
            List<Integer> leasesPerNode,
            List<Integer> nodeCounts,
            int leasesEachNode,
            Duration scaleSeconds,
            int libraryLeases,
            Duration libraryWindow,
            Duration standbyLease,
            Duration libraryLease) {

        public static Sizes full() {
            return new Sizes(
                    3,
                    3,
                    200,
                    40,
                    20,
                    Duration.ofMinutes(10),
                    List.of(1, 10, 100),
                    Duration.ofSeconds(4),
                    List.of(100, 1_000, 10_000, 100_000),
                    List.of(1, 2, 5, 10, 20),
                    5_000,
                    Duration.ofSeconds(5),
                    10_000,
                    Duration.ofSeconds(12),
                    Duration.ofMillis(2500),
                    Duration.ofSeconds(10));
        }

        public static Sizes smoke() {
            return new Sizes(
                    2,
                    1,
                    3,
                    1,
                    0,
                    Duration.ofSeconds(2),
                    List.of(2),
                    Duration.ofSeconds(1),
                    List.of(100, 1_000),
                    List.of(1, 2),
                    500,
                    Duration.ofMillis(400),
                    100,
                    Duration.ofMillis(1200),
                    Duration.ofMillis(1000),
                    Duration.ofMillis(1000));
        }
    }

    private static final Random RANDOM = new Random(20261126L);
    private final BenchDatabase db;
    private final Sizes sizes;
    private final Path nodeLogDir;

    public Harness(BenchDatabase db, Sizes sizes) {
        this.db = db;
        this.sizes = sizes;
        this.nodeLogDir = Path.of(System.getProperty("java.io.tmpdir"));
    }

    private String freshSchema(String prefix) {
        String schema =
                prefix + ProcessHandle.current().pid() + "_" + Long.toString(System.nanoTime() % 1_000_000_000L, 36);
        PgLease.migrate(db.dataSource(), schema);
        return schema;
    }

    private static LeaderListener listener(CompletableFuture<Leadership>[] elected) {
        return new LeaderListener() {
            @Override
            public void onElected(Leadership l) {
                CompletableFuture<Leadership> f = elected[0];
                if (f != null) {
                    f.complete(l);
                }
            }

            @Override
            public void onRevoked(Leadership l) {}
        };
    }

    private static final LeaderListener NO_OP = new LeaderListener() {
        @Override
        public void onElected(Leadership l) {}

        @Override
        public void onRevoked(Leadership l) {}
    };

    /** Counts acquire attempts and remembers when the last denied one finished. */
    static final class CountingObserver implements LeaseObserver {
        final LongAdder attempts = new LongAdder();
        final LongAdder denied = new LongAdder();
        final LongAdder renewals = new LongAdder();
        final AtomicLong lastDenied = new AtomicLong();

        @Override
        public void acquireAttempted(String leaseName, boolean granted, long token, Duration latency) {
            attempts.increment();
            if (!granted) {
                denied.increment();
                lastDenied.set(System.nanoTime());
            }
        }

        @Override
        public void renewed(String leaseName, long token, Duration latency) {
            renewals.increment();
        }
    }

    private static LeaseConfig config(
            String schema, Duration lease, Duration deadline, Duration retry, String label, LeaseObserver observer) {
        return LeaseConfig.builder()
                .schema(schema)
                .leaseDuration(lease)
                .renewDeadline(deadline)
                .retryPeriod(retry)
                .holderLabel(label)
                .observer(observer)
                .build();
    }

    // ================================================================ graceful handoff

    /**
     * Two candidates in one JVM take turns: the leader closes its elector (which releases the lease), the standby
     * (asleep, woken by NOTIFY) acquires. Measured on the database clock from the lease_events rows (release → next
     * grant) and on the client from close() to the standby's onElected callback.
     */
    @SuppressWarnings("unchecked")
    public Section handoff() throws Exception {
        String schema = freshSchema("hand");
        String lease = "handoff";
        CountingObserver obsA = new CountingObserver();
        CountingObserver obsB = new CountingObserver();
        Duration leaseDuration = Duration.ofSeconds(2);
        List<Double> client = new ArrayList<>();
        try (PgLease a = PgLease.create(
                        db.dataSource(),
                        config(
                                schema,
                                leaseDuration,
                                Duration.ofMillis(1200),
                                Duration.ofMillis(400),
                                "hand-a",
                                obsA));
                PgLease b = PgLease.create(
                        db.dataSource(),
                        config(
                                schema,
                                leaseDuration,
                                Duration.ofMillis(1200),
                                Duration.ofMillis(400),
                                "hand-b",
                                obsB))) {
            CompletableFuture<Leadership>[] electedA = new CompletableFuture[] {new CompletableFuture<>()};
            CompletableFuture<Leadership>[] electedB = new CompletableFuture[] {null};
            Elector leader = a.elector(lease, listener(electedA));
            electedA[0].get(10, TimeUnit.SECONDS);
            PgLease[] sides = {a, b};
            CountingObserver[] observers = {obsA, obsB};
            CompletableFuture<Leadership>[][] futures = new CompletableFuture[][] {electedA, electedB};
            int leaderSide = 0;
            for (int i = 0; i < sizes.handoffs(); i++) {
                int standbySide = 1 - leaderSide;
                long deniedBefore = observers[standbySide].denied.sum();
                futures[standbySide][0] = new CompletableFuture<>();
                Elector standby = sides[standbySide].elector(lease, listener(futures[standbySide]));
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (observers[standbySide].denied.sum() == deniedBefore && System.nanoTime() < until) {
                    Thread.sleep(1);
                }
                Thread.sleep(20 + RANDOM.nextInt(80)); // the standby is asleep, waiting for the expiry or a NOTIFY
                long t0 = System.nanoTime();
                leader.close();
                futures[standbySide][0].get(10, TimeUnit.SECONDS);
                client.add((System.nanoTime() - t0) / 1e6);
                leader = standby;
                leaderSide = standbySide;
            }
            leader.close();
        }
        List<Double> dbGaps = new ArrayList<>();
        for (Object[] row : db.query(
                "SELECT extract(epoch FROM (at - lag(at) OVER w)) * 1000, kind, lag(kind) OVER w " + "FROM " + schema
                        + ".lease_events WHERE name = '" + lease + "' WINDOW w AS (ORDER BY id) ORDER BY id")) {
            if (row[0] != null && "acquired".equals(row[1]) && "released".equals(row[2])) {
                dbGaps.add(((Number) row[0]).doubleValue());
            }
        }
        Stats d = Stats.of(dbGaps);
        Stats c = Stats.of(client);
        String md = "| measured from → to | n | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|\n"
                + "| release committed → standby's grant (database clock, lease_events) | " + d.cells() + " |\n"
                + "| leader's `Elector.close()` called → standby's `onElected` ran (client) | " + c.cells() + " |\n";
        Map<String, Double> fig = new LinkedHashMap<>();
        fig.put("handoff.db.p50", d.p50());
        fig.put("handoff.db.p99", d.p99());
        fig.put("handoff.client.p50", c.p50());
        fig.put("handoff.client.p99", c.p99());
        return new Section("Graceful handoff", md, fig);
    }

    // ================================================================ crash failover (node processes, kill -9)

    private String[] nodeArgs(String schema, String lease, Duration leaseDuration, String label) {
        long ms = leaseDuration.toMillis();
        return new String[] {
            "--jdbc-url",
            db.jdbcUrl(),
            "--schema",
            schema,
            "--lease",
            lease,
            "--lease-duration",
            ms + "ms",
            "--renew-deadline",
            (ms * 6 / 10) + "ms",
            "--retry-period",
            (ms / 5) + "ms",
            "--holder-label",
            label,
            "--trace"
        };
    }

    private static String holderOf(NodeProcess node) {
        for (Map<String, Object> e : node.events()) {
            if ("started".equals(e.get("event"))) {
                return (String) e.get("holder");
            }
        }
        return null;
    }

    private static boolean attempted(NodeProcess node) {
        for (Map<String, Object> e : node.events()) {
            if ("acquire".equals(e.get("event")) || "elected".equals(e.get("event"))) {
                return true;
            }
        }
        return false;
    }

    /**
     * Three node processes campaign; the leader is killed with SIGKILL at a random moment, a fresh node replaces it.
     * The gap is measured on the database clock: from the dead leader's last expires_at (read from the row until the
     * holder changes) to the next grant's acquired_at.
     */
    public Section failover(Duration leaseDuration, int iterations) throws Exception {
        String schema = freshSchema("fail");
        String lease = "failover";
        List<NodeProcess> nodes = new ArrayList<>();
        List<Double> gaps = new ArrayList<>();
        List<Double> killToGrant = new ArrayList<>();
        int counter = 0;
        try {
            for (int i = 0; i < sizes.nodes(); i++) {
                nodes.add(NodeProcess.start(nodeArgs(schema, lease, leaseDuration, "fail-" + counter++)));
            }
            for (NodeProcess n : nodes) {
                n.await(NodeProcess.event("started"), 60_000);
            }
            for (int it = 0; it < iterations; it++) {
                // all three are up and have campaigned; someone leads
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                String holder = null;
                while (System.nanoTime() < until) {
                    holder = currentHolder(schema, lease);
                    boolean allTried = nodes.stream().allMatch(Harness::attempted);
                    if (holder != null && allTried) {
                        break;
                    }
                    Thread.sleep(10);
                }
                Thread.sleep(RANDOM.nextInt((int) Math.max(1, leaseDuration.toMillis() / 2)));
                holder = currentHolder(schema, lease);
                NodeProcess victim = null;
                for (NodeProcess n : nodes) {
                    if (holder != null && holder.equals(holderOf(n))) {
                        victim = n;
                    }
                }
                if (victim == null) {
                    throw new IllegalStateException("no node holds " + lease + " (holder " + holder + ")");
                }
                victim.process().destroyForcibly(); // SIGKILL, by PID
                long killed = System.nanoTime();
                Timestamp lastExpiry = null;
                Timestamp grantedAt = null;
                long deadline = System.nanoTime() + leaseDuration.toNanos() * 10;
                try (Connection c = db.dataSource().getConnection();
                        PreparedStatement ps = c.prepareStatement(
                                "SELECT holder, expires_at, acquired_at FROM " + schema + ".leases WHERE name = ?")) {
                    ps.setString(1, lease);
                    while (System.nanoTime() < deadline) {
                        try (ResultSet rs = ps.executeQuery()) {
                            rs.next();
                            String h = rs.getString(1);
                            if (holder.equals(h)) {
                                lastExpiry = rs.getTimestamp(2);
                            } else if (h != null) {
                                grantedAt = rs.getTimestamp(3);
                                break;
                            }
                        }
                        Thread.sleep(2);
                    }
                }
                long seen = System.nanoTime();
                victim.process().waitFor(5, TimeUnit.SECONDS);
                victim.close();
                nodes.remove(victim);
                if (grantedAt == null || lastExpiry == null) {
                    throw new IllegalStateException("no new grant within " + leaseDuration.multipliedBy(10));
                }
                gaps.add((grantedAt.getTime() - lastExpiry.getTime())
                        + (grantedAt.getNanos() % 1_000_000 - lastExpiry.getNanos() % 1_000_000) / 1e6);
                killToGrant.add((seen - killed) / 1e6);
                if (it == iterations - 1) {
                    break;
                }
                NodeProcess fresh = NodeProcess.start(nodeArgs(schema, lease, leaseDuration, "fail-" + counter++));
                nodes.add(fresh);
                fresh.await(NodeProcess.event("started"), 60_000);
            }
        } finally {
            for (NodeProcess n : nodes) {
                try {
                    n.terminate(10_000);
                } catch (AssertionError | InterruptedException e) {
                    n.close();
                }
            }
        }
        Stats g = Stats.of(gaps);
        Stats k = Stats.of(killToGrant);
        String label = leaseDuration.toMillis() + " ms";
        String md = "| lease " + label + ", " + sizes.nodes() + " nodes (renew deadline "
                + leaseDuration.toMillis() * 6 / 10 + " ms, retry "
                + leaseDuration.toMillis() / 5 + " ms) | n | p50 ms | p90 ms | p99 ms | max ms |\n"
                + "|---|---:|---:|---:|---:|---:|\n"
                + "| dead leader's expires_at → next grant (database clock) | " + g.cells() + " |\n"
                + "| kill -9 → next grant seen by an observer polling every 2 ms | " + k.cells() + " |\n";
        Map<String, Double> fig = new LinkedHashMap<>();
        fig.put("failover." + leaseDuration.toMillis() + ".p50", g.p50());
        fig.put("failover." + leaseDuration.toMillis() + ".p99", g.p99());
        fig.put("failover." + leaseDuration.toMillis() + ".kill.p50", k.p50());
        return new Section("Crash failover, " + label + " leases", md, fig);
    }

    private String currentHolder(String schema, String lease) {
        List<Object[]> rows = db.query("SELECT holder FROM " + schema + ".leases WHERE name = '" + lease
                + "' AND expires_at > clock_timestamp()");
        return rows.isEmpty() ? null : (String) rows.get(0)[0];
    }

    // ================================================================ long run at 500 ms leases

    /** Starts three nodes at 500 ms leases in their own database; the returned future ends after {@code length}. */
    public CompletableFuture<Section> soak(Duration length) {
        String database = "soak" + ProcessHandle.current().pid();
        db.execute("CREATE DATABASE " + database);
        String url = db.jdbcUrl().replace("/postgres?", "/" + database + "?");
        BenchDatabase soakDb = BenchDatabase.external(url);
        return CompletableFuture.supplyAsync(() -> {
            try {
                return runSoak(soakDb, length);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
    }

    private Section runSoak(BenchDatabase soakDb, Duration length) throws Exception {
        String schema = "soak";
        PgLease.migrate(soakDb.dataSource(), schema);
        String lease = "soak";
        List<NodeProcess> nodes = new ArrayList<>();
        long started;
        long elapsed = 0;
        long endMillis = 0;
        String endDb = null;
        try {
            for (int i = 0; i < sizes.soakNodes(); i++) {
                String[] args = nodeArgs(schema, lease, Duration.ofMillis(500), "soak-" + i);
                args[1] = soakDb.jdbcUrl();
                nodes.add(NodeProcess.start(args));
            }
            for (NodeProcess n : nodes) {
                n.await(NodeProcess.event("started"), 60_000);
            }
            started = System.nanoTime();
            Thread.sleep(length.toMillis());
            endMillis = System.currentTimeMillis();
            elapsed = System.nanoTime() - started;
            endDb = soakDb.query("SELECT clock_timestamp()").get(0)[0].toString();
        } finally {
            for (NodeProcess n : nodes) {
                try {
                    n.terminate(10_000);
                } catch (AssertionError | InterruptedException e) {
                    n.close();
                }
            }
        }
        int elected = 0;
        int revoked = 0;
        Map<String, Integer> reasons = new java.util.TreeMap<>();
        List<Double> renewMs = new ArrayList<>();
        long renewOk = 0;
        long renewOther = 0;
        for (NodeProcess n : nodes) {
            for (Map<String, Object> e : n.events()) {
                Object ev = e.get("event");
                if (((Number) e.getOrDefault("t", 0L)).longValue() > endMillis) {
                    continue; // after the window: the nodes are being stopped one by one
                }
                if ("elected".equals(ev)) {
                    elected++;
                } else if ("revoked".equals(ev)) {
                    revoked++;
                    reasons.merge(String.valueOf(e.get("reason")), 1, Integer::sum);
                } else if ("renew".equals(ev)) {
                    if ("ok".equals(e.get("result"))) {
                        renewOk++;
                        renewMs.add(((Number) e.get("t")).doubleValue() - ((Number) e.get("sent")).doubleValue());
                    } else {
                        renewOther++;
                    }
                }
            }
        }
        // changes of holder while the three nodes ran (the final releases on SIGTERM are not leader changes)
        long changes = soakDb.queryLong("SELECT count(*) FROM " + schema + ".lease_events WHERE name = '" + lease
                        + "' AND kind IN ('acquired', 'taken_over') AND at <= '" + endDb + "'::timestamptz")
                - 1;
        Stats r = Stats.of(renewMs);
        String md =
                "| run | leader changes after the first election | elected events | revoked events | renewals ok | renewals failed/lost | renew p50 ms | renew p99 ms | renew max ms |\n"
                        + "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
                        + String.format(
                                Locale.ROOT,
                                "| %.1f min, %d nodes, 500 ms / 300 ms / 100 ms | %d | %d | %d | %d | %d | %s | %s | %s |%n",
                                elapsed / 60e9,
                                sizes.soakNodes(),
                                changes,
                                elected,
                                revoked,
                                renewOk,
                                renewOther,
                                Stats.f(r.p50()),
                                Stats.f(r.p99()),
                                Stats.f(r.max()));
        String md2 = md;
        if (!reasons.isEmpty()) {
            StringBuilder sb = new StringBuilder(md).append("\nStep-down reasons: ");
            reasons.forEach(
                    (k, v) -> sb.append('"').append(k).append("\" × ").append(v).append("; "));
            md2 = sb.append('\n').toString();
        }
        md2 += "\nLoad average while it ran (1/5/15 min), at the end: " + loadAverage() + ".\n";
        Map<String, Double> fig = new LinkedHashMap<>();
        fig.put("soak.minutes", elapsed / 60e9);
        fig.put("soak.leaderChanges", (double) changes);
        fig.put("soak.renewals", (double) renewOk);
        fig.put("soak.renew.p99", r.p99());
        return new Section("500 ms leases, long run", md2, fig);
    }

    // ================================================================ idle standbys

    /**
     * One leader and S standbys (each its own PgLease, i.e. its own process identity) on one lease. Counts, over a
     * window of whole lease durations, the statements the server ran (pg_stat_statements) and the acquire attempts
     * the standbys' observers saw.
     */
    public Section standbys() throws Exception {
        Duration leaseDuration = sizes.standbyLease();
        Duration deadline = leaseDuration.multipliedBy(6).dividedBy(10);
        Duration retry = leaseDuration.dividedBy(5);
        StringBuilder md = new StringBuilder();
        md.append("| standbys | window | acquire statements (pg_stat_statements) | per standby per lease duration | "
                + "acquire attempts (observers) | LISTEN health checks `SELECT 1` | per process per lease duration | "
                + "all statements per standby per lease duration | leader renewals | server CPU % of one core |\n"
                + "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        Map<String, Double> fig = new LinkedHashMap<>();
        for (int s : sizes.standbys()) {
            String schema = freshSchema("stby");
            String lease = "standbys";
            List<PgLease> standbys = new ArrayList<>();
            List<CountingObserver> observers = new ArrayList<>();
            CountingObserver leaderObserver = new CountingObserver();
            try (PgLease leader = PgLease.create(
                    db.dataSource(), config(schema, leaseDuration, deadline, retry, "leader", leaderObserver))) {
                Elector le = leader.elector(lease, NO_OP);
                le.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
                try {
                    for (int i = 0; i < s; i++) {
                        CountingObserver o = new CountingObserver();
                        observers.add(o);
                        PgLease p = PgLease.create(
                                db.dataSource(), config(schema, leaseDuration, deadline, retry, "standby-" + i, o));
                        standbys.add(p);
                        p.elector(lease, NO_OP);
                    }
                    Thread.sleep(leaseDuration.toMillis()); // settle: every standby tried and went to sleep
                    long windowMillis = leaseDuration.toMillis()
                            * sizes.standbyWindowLeases().toSeconds();
                    long attemptsBefore =
                            observers.stream().mapToLong(o -> o.attempts.sum()).sum();
                    db.resetStatements();
                    long cpu0 = db.serverCpuTicks();
                    long t0 = System.nanoTime();
                    Thread.sleep(windowMillis);
                    long elapsedNanos = System.nanoTime() - t0;
                    long cpu1 = db.serverCpuTicks();
                    long attempts =
                            observers.stream().mapToLong(o -> o.attempts.sum()).sum() - attemptsBefore;
                    Map<String, long[]> st = db.statements("");
                    long acquires = st.getOrDefault("acquire", new long[2])[0];
                    long renews = st.getOrDefault("renew", new long[2])[0];
                    long health = st.getOrDefault("SELECT 1 (LISTEN health check)", new long[2])[0];
                    double leases = elapsedNanos / (double) leaseDuration.toNanos();
                    double perStandby = acquires / (double) s / leases;
                    double healthPerProcess = health / (double) (s + 1) / leases;
                    double allPerStandby = (acquires + health * s / (double) (s + 1)) / s / leases;
                    double cpuPct = (cpu1 - cpu0) / BenchDatabase.TICKS_PER_SECOND / (elapsedNanos / 1e9) * 100;
                    md.append(String.format(
                            Locale.ROOT,
                            "| %d | %.1f s | %d | %.2f | %d | %d | %.2f | %.2f | %d | %.1f |%n",
                            s,
                            elapsedNanos / 1e9,
                            acquires,
                            perStandby,
                            attempts,
                            health,
                            healthPerProcess,
                            allPerStandby,
                            renews,
                            cpuPct));
                    fig.put("standbys." + s + ".acquirePerLease", perStandby);
                    fig.put("standbys." + s + ".allPerLease", allPerStandby);
                    fig.put("standbys." + s + ".observerAttempts", (double) attempts);
                } finally {
                    for (PgLease p : standbys) {
                        p.close();
                    }
                    le.close();
                }
            }
        }
        md.append("\nLease ")
                .append(leaseDuration.toMillis())
                .append(" ms, renew deadline ")
                .append(deadline.toMillis())
                .append(" ms, retry period ")
                .append(retry.toMillis())
                .append(" ms; pg_stat_statements ")
                .append(db.statementsAvailable() ? "available" : "NOT available (observer counts only)")
                .append(".\n");
        return new Section("Idle standbys: statements per lease duration", md.toString(), fig);
    }

    // ================================================================ scale: batch renewal throughput

    private void seed(String schema, String prefix, String holder, int count) {
        db.execute("INSERT INTO " + schema + ".leases (name, holder, token, expires_at) SELECT '" + prefix
                + "' || i, '" + holder + "', 1, clock_timestamp() + interval '1 hour' FROM generate_series(0, "
                + (count - 1) + ") i");
    }

    /** Renews back to back for {@code length} on every access (one thread each); returns [renewals, statements]. */
    private static long[] hammer(List<BenchAccess> nodes, Duration length, List<Double> latenciesMs) throws Exception {
        LongAdder renewals = new LongAdder();
        LongAdder statements = new LongAdder();
        CountDownLatch done = new CountDownLatch(nodes.size());
        long end = System.nanoTime() + length.toNanos();
        List<Thread> threads = new ArrayList<>();
        Throwable[] failure = new Throwable[1];
        for (BenchAccess node : nodes) {
            Thread t = new Thread(
                    () -> {
                        try {
                            do {
                                long s = System.nanoTime();
                                int n = node.renewAll();
                                long e = System.nanoTime();
                                if (n != node.holding()) {
                                    throw new IllegalStateException("renewed " + n + " of " + node.holding());
                                }
                                renewals.add(n);
                                statements.increment();
                                synchronized (latenciesMs) {
                                    latenciesMs.add((e - s) / 1e6);
                                }
                            } while (System.nanoTime() < end);
                        } catch (Throwable e) {
                            failure[0] = e;
                        } finally {
                            done.countDown();
                        }
                    },
                    "renew-" + node.holder());
            threads.add(t);
            t.start();
        }
        done.await();
        if (failure[0] != null) {
            throw new IllegalStateException("renewal failed", failure[0]);
        }
        return new long[] {renewals.sum(), statements.sum()};
    }

    /**
     * One node holding N leases renews them all in one statement, back to back (the capacity of the database for
     * this node); then 1..20 nodes doing the same at once. Leases are seeded directly (one INSERT), renewals run the
     * library's batch renew statement on its lease connection.
     */
    public Section scale() throws Exception {
        String schema = freshSchema("scale");
        int maxOne =
                sizes.leasesPerNode().stream().mapToInt(Integer::intValue).max().orElse(0);
        seed(schema, "n0-", "node-0", maxOne);
        int maxNodes =
                sizes.nodeCounts().stream().mapToInt(Integer::intValue).max().orElse(1);
        for (int k = 1; k < maxNodes; k++) {
            seed(schema, "n" + k + "-", "node-" + k, sizes.leasesEachNode());
        }
        db.execute("VACUUM ANALYZE " + schema + ".leases");
        StringBuilder md = new StringBuilder();
        md.append("One node, all its leases in one renew statement, statements back to back:\n\n"
                + "| leases held | statements | statement p50 ms | p99 ms | renewals/s | server CPU (cores) | server CPU µs per renewal |\n"
                + "|---:|---:|---:|---:|---:|---:|---:|\n");
        Map<String, Double> fig = new LinkedHashMap<>();
        for (int n : sizes.leasesPerNode()) {
            try (BenchAccess node = new BenchAccess(db.dataSource(), schema, "node-0")) {
                for (int i = 0; i < n; i++) {
                    node.hold("n0-" + i, 1, Duration.ofHours(1));
                }
                node.renewAll(); // connect, warm up
                node.renewAll();
                List<Double> lat = new ArrayList<>();
                long cpu0 = db.serverCpuTicks();
                long t0 = System.nanoTime();
                long[] r = hammer(List.of(node), sizes.scaleSeconds(), lat);
                double secs = (System.nanoTime() - t0) / 1e9;
                double cpu = (db.serverCpuTicks() - cpu0) / BenchDatabase.TICKS_PER_SECOND;
                Stats s = Stats.of(lat);
                double rate = r[0] / secs;
                md.append(String.format(
                        Locale.ROOT,
                        "| %,d | %d | %s | %s | %,.0f | %.2f | %.2f |%n",
                        n,
                        r[1],
                        Stats.f(s.p50()),
                        Stats.f(s.p99()),
                        rate,
                        cpu / secs,
                        cpu * 1e6 / r[0]));
                fig.put("scale.one." + n + ".rate", rate);
                fig.put("scale.one." + n + ".p50ms", s.p50());
            }
        }
        md.append("\nN nodes at once, each holding ")
                .append(String.format(Locale.ROOT, "%,d", sizes.leasesEachNode()))
                .append(
                        " leases and renewing them in one statement, back to back (each node its own connection and thread):\n\n"
                                + "| nodes | leases | statements | statement p50 ms | p99 ms | total renewals/s | server CPU (cores) | server CPU µs per renewal |\n"
                                + "|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (int k : sizes.nodeCounts()) {
            List<BenchAccess> nodes = new ArrayList<>();
            try {
                for (int j = 0; j < k; j++) {
                    BenchAccess a = new BenchAccess(db.dataSource(), schema, "node-" + j);
                    for (int i = 0; i < sizes.leasesEachNode(); i++) {
                        a.hold("n" + j + "-" + i, 1, Duration.ofHours(1));
                    }
                    a.renewAll();
                    nodes.add(a);
                }
                List<Double> lat = new ArrayList<>();
                long cpu0 = db.serverCpuTicks();
                long t0 = System.nanoTime();
                long[] r = hammer(nodes, sizes.scaleSeconds(), lat);
                double secs = (System.nanoTime() - t0) / 1e9;
                double cpu = (db.serverCpuTicks() - cpu0) / BenchDatabase.TICKS_PER_SECOND;
                Stats s = Stats.of(lat);
                double rate = r[0] / secs;
                md.append(String.format(
                        Locale.ROOT,
                        "| %d | %,d | %d | %s | %s | %,.0f | %.2f | %.2f |%n",
                        k,
                        k * sizes.leasesEachNode(),
                        r[1],
                        Stats.f(s.p50()),
                        Stats.f(s.p99()),
                        rate,
                        cpu / secs,
                        cpu * 1e6 / r[0]));
                fig.put("scale.nodes." + k + ".rate", rate);
            } finally {
                for (BenchAccess a : nodes) {
                    a.close();
                }
            }
        }
        return new Section("Scale: batch renewal throughput", md.toString(), fig);
    }

    // ================================================================ scale through the library

    /**
     * One PgLease campaigning for N leases (N electors, nobody else): all are acquired, then over a window the
     * server's statement counts show how many renew statements the election loop sends per renew period, how many
     * rows each renews, and the JVM's thread count shows there are no per-lease threads.
     */
    public Section library() throws Exception {
        String schema = freshSchema("lib");
        int n = sizes.libraryLeases();
        Duration leaseDuration = sizes.libraryLease();
        Duration retry = leaseDuration.dividedBy(5);
        int threadsBefore = ManagementFactory.getThreadMXBean().getThreadCount();
        ManagementFactory.getThreadMXBean().resetPeakThreadCount(); // the peak of this scenario, not of the run so far
        StringBuilder md = new StringBuilder();
        Map<String, Double> fig = new LinkedHashMap<>();
        CountingObserver observer = new CountingObserver();
        try (PgLease p = PgLease.create(
                db.dataSource(),
                config(schema, leaseDuration, leaseDuration.multipliedBy(6).dividedBy(10), retry, "lib", observer))) {
            List<Elector> electors = new ArrayList<>(n);
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                electors.add(p.elector("lease-" + i, NO_OP));
            }
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (electors.stream().filter(Elector::isLeader).count() < n && System.nanoTime() < until) {
                Thread.sleep(20);
            }
            double acquireAll = (System.nanoTime() - t0) / 1e9;
            int peakThreads = ManagementFactory.getThreadMXBean().getPeakThreadCount();
            Thread.sleep(retry.toMillis() * 2); // let renewals settle
            db.resetStatements();
            long renewedBefore = observer.renewals.sum();
            long cpu0 = db.serverCpuTicks();
            long w0 = System.nanoTime();
            Thread.sleep(sizes.libraryWindow().toMillis());
            double secs = (System.nanoTime() - w0) / 1e9;
            double cpu = (db.serverCpuTicks() - cpu0) / BenchDatabase.TICKS_PER_SECOND;
            long renewed = observer.renewals.sum() - renewedBefore;
            Map<String, long[]> st = db.statements("");
            long[] renew = st.getOrDefault("renew", new long[2]);
            long leaders = electors.stream().filter(Elector::isLeader).count();
            int threadsNow = ManagementFactory.getThreadMXBean().getThreadCount();
            double periods = secs / (retry.toMillis() / 1000.0);
            md.append("| leases | acquired all in | renew statements per renew period | rows per renew statement | "
                    + "renewals/s | server CPU % of one core | JVM threads before → during (peak) |\n"
                    + "|---:|---:|---:|---:|---:|---:|---:|\n");
            md.append(String.format(
                    Locale.ROOT,
                    "| %,d | %.1f s | %.2f | %.0f | %,.0f | %.1f | %d → %d (%d) |%n",
                    n,
                    acquireAll,
                    renew[0] / periods,
                    renew[0] == 0 ? 0.0 : renew[1] / (double) renew[0],
                    renewed / secs,
                    cpu / secs * 100,
                    threadsBefore,
                    threadsNow,
                    peakThreads));
            md.append("\nLease ")
                    .append(leaseDuration.toMillis())
                    .append(" ms, renew deadline ")
                    .append(leaseDuration.toMillis() * 6 / 10)
                    .append(" ms, retry period ")
                    .append(retry.toMillis())
                    .append(" ms; window ")
                    .append(String.format(Locale.ROOT, "%.1f", secs))
                    .append(" s; still leading at the end: ")
                    .append(leaders)
                    .append(" of ")
                    .append(n)
                    .append(".\n");
            fig.put("library.renewStatementsPerPeriod", renew[0] / periods);
            fig.put("library.rowsPerStatement", renew[0] == 0 ? 0.0 : renew[1] / (double) renew[0]);
            fig.put("library.leaders", (double) leaders);
            fig.put("library.threadsAdded", (double) (threadsNow - threadsBefore));
            fig.put("library.peakThreadsAdded", (double) (peakThreads - threadsBefore));
            for (Elector e : electors) {
                e.close();
            }
        }
        return new Section(
                "Scale through the library: one node, " + String.format(Locale.ROOT, "%,d", n) + " leases",
                md.toString(),
                fig);
    }

    // ================================================================ side by side, interleaved

    /**
     * The per-call costs that are compared with each other, measured interleaved: every round runs each operation
     * once, in a random order, so that all of them see the same machine load (JMH runs its benchmarks one after the
     * other). Plain write vs fenced write; pglease acquire + release vs the ShedLock and Spring Integration lock
     * round trips on the same server.
     */
    public Section interleaved() throws Exception {
        String schema = freshSchema("side");
        db.execute("CREATE TABLE " + schema + ".counter (name text PRIMARY KEY, value bigint NOT NULL)");
        db.execute("INSERT INTO " + schema + ".counter VALUES ('c', 0)");
        db.execute("CREATE TABLE IF NOT EXISTS shedlock (name VARCHAR(64) NOT NULL, lock_until TIMESTAMP NOT NULL, "
                + "locked_at TIMESTAMP NOT NULL, locked_by VARCHAR(255) NOT NULL, PRIMARY KEY (name))");
        db.execute("CREATE TABLE IF NOT EXISTS INT_LOCK (LOCK_KEY CHAR(36) NOT NULL, REGION VARCHAR(100) NOT NULL, "
                + "CLIENT_ID CHAR(36), CREATED_DATE TIMESTAMP NOT NULL, EXPIRED_AFTER TIMESTAMP NOT NULL, "
                + "constraint INT_LOCK_PK primary key (LOCK_KEY, REGION))");
        String update = "UPDATE " + schema + ".counter SET value = value + 1 WHERE name = 'c'";
        String[] names = {
            "plain write (UPDATE in a transaction)",
            "fenced write (inFencedTransaction, same UPDATE)",
            "forward-fence write (ForwardFence.inTransaction, same UPDATE)",
            "pglease renew (1 lease)",
            "pglease acquire + release",
            "ShedLock lock + unlock (JdbcTemplateLockProvider, DB time)",
            "Spring Integration lock + unlock (JdbcLockRegistry)"
        };
        List<List<Double>> samples = new ArrayList<>();
        for (int i = 0; i < names.length; i++) {
            samples.add(new ArrayList<>());
        }
        try (com.zaxxer.hikari.HikariDataSource pool = db.pool(4, "side");
                PgLease pglease = PgLease.create(
                        pool,
                        config(
                                schema,
                                Duration.ofSeconds(30),
                                Duration.ofSeconds(20),
                                Duration.ofSeconds(5),
                                "side",
                                LeaseObserver.NONE));
                Elector elector = pglease.elector("fenced", NO_OP);
                BenchAccess lib = new BenchAccess(db.dataSource(), schema, "side-direct")) {
            Leadership leadership =
                    elector.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            try (Connection c = pool.getConnection()) {
                dev.pglease.ForwardFence.createTable(c, schema + ".fences");
            }
            long renewToken = lib.acquire("renewed", Duration.ofHours(1));
            lib.hold("renewed", renewToken, Duration.ofHours(1));
            net.javacrumbs.shedlock.provider.jdbctemplate.JdbcTemplateLockProvider shedlock =
                    new net.javacrumbs.shedlock.provider.jdbctemplate.JdbcTemplateLockProvider(
                            net.javacrumbs.shedlock.provider.jdbctemplate.JdbcTemplateLockProvider.Configuration
                                    .builder()
                                    .withJdbcTemplate(new org.springframework.jdbc.core.JdbcTemplate(pool))
                                    .usingDbTime()
                                    .build());
            org.springframework.integration.jdbc.lock.DefaultLockRepository repository =
                    new org.springframework.integration.jdbc.lock.DefaultLockRepository(pool);
            repository.setTransactionManager(
                    new org.springframework.jdbc.datasource.DataSourceTransactionManager(pool));
            repository.afterPropertiesSet();
            repository.afterSingletonsInstantiated();
            org.springframework.integration.jdbc.lock.JdbcLockRegistry registry =
                    new org.springframework.integration.jdbc.lock.JdbcLockRegistry(repository);
            Sql work = c -> {
                try (PreparedStatement ps = c.prepareStatement(update)) {
                    return ps.executeUpdate();
                }
            };
            List<Op> ops = List.of(
                    () -> {
                        try (Connection c = pool.getConnection()) {
                            c.setAutoCommit(false);
                            try {
                                work.run(c);
                                c.commit();
                            } catch (SQLException | RuntimeException e) {
                                c.rollback();
                                throw e;
                            } finally {
                                c.setAutoCommit(true);
                            }
                        }
                    },
                    () -> pglease.inFencedTransaction(leadership, work::run),
                    () -> pglease.forwardFence().inTransaction(pool, "counter", leadership, work::run),
                    lib::renewAll,
                    () -> {
                        long token = lib.acquire("toggle", Duration.ofSeconds(30));
                        if (token == 0 || !lib.release("toggle", token)) {
                            throw new IllegalStateException("acquire/release of a free lease failed");
                        }
                    },
                    () -> shedlock.lock(new net.javacrumbs.shedlock.core.LockConfiguration(
                                    java.time.Instant.now(), "side", Duration.ofSeconds(30), Duration.ZERO))
                            .orElseThrow()
                            .unlock(),
                    () -> {
                        java.util.concurrent.locks.Lock lock = registry.obtain("side");
                        lock.lock();
                        lock.unlock();
                    });
            int warmup = Math.max(20, sizes.handoffs() * 5);
            int rounds = sizes.handoffs() * 15;
            List<Integer> order = new ArrayList<>();
            for (int i = 0; i < ops.size(); i++) {
                order.add(i);
            }
            for (int round = 0; round < warmup + rounds; round++) {
                java.util.Collections.shuffle(order, RANDOM);
                for (int i : order) {
                    long t0 = System.nanoTime();
                    ops.get(i).run();
                    long t1 = System.nanoTime();
                    if (round >= warmup) {
                        samples.get(i).add((t1 - t0) / 1e6);
                    }
                }
            }
        }
        Stats plain = Stats.of(samples.get(0));
        StringBuilder md =
                new StringBuilder("| operation (interleaved, random order each round) | n | p50 ms | p90 ms | "
                        + "p99 ms | max ms | p50 ÷ plain write p50 |\n|---|---:|---:|---:|---:|---:|---:|\n");
        Map<String, Double> fig = new LinkedHashMap<>();
        String[] keys = {"plain", "fenced", "forward", "renew", "acqrel", "shedlock", "spring"};
        for (int i = 0; i < names.length; i++) {
            Stats st = Stats.of(samples.get(i));
            md.append("| ")
                    .append(names[i])
                    .append(" | ")
                    .append(st.cells())
                    .append(" | ")
                    .append(String.format(Locale.ROOT, "%.2f×", st.p50() / plain.p50()))
                    .append(" |\n");
            fig.put("side." + keys[i] + ".p50", st.p50());
            fig.put("side." + keys[i] + ".p99", st.p99());
        }
        return new Section("Side by side (interleaved): fenced vs plain write, lock round trips", md.toString(), fig);
    }

    // ================================================================ a new session's first grant

    /**
     * A standby's first grant in a new database session, with and without the session warm-up (interleaved in
     * random order): the cold one compiles the schema's trigger functions and plans the statements first.
     */
    public Section firstGrant() throws Exception {
        String schema = freshSchema("first");
        List<List<Double>> samples = List.of(new ArrayList<>(), new ArrayList<>());
        List<Integer> order = new ArrayList<>(List.of(0, 1));
        int rounds = Math.max(10, sizes.handoffs() / 4);
        for (int round = 0; round < rounds; round++) {
            java.util.Collections.shuffle(order, RANDOM);
            for (int i : order) {
                long micros = dev.pglease.BenchAccess.firstGrantMicros(
                        db.dataSource(), schema, "first-" + round + "-" + i, i == 1);
                samples.get(i).add(micros / 1000.0);
            }
        }
        Stats cold = Stats.of(samples.get(0));
        Stats warm = Stats.of(samples.get(1));
        String md =
                "| first grant in a new session (takeover of a free lease) | n | p50 ms | p90 ms | p99 ms | max ms |\n"
                        + "|---|---:|---:|---:|---:|---:|\n"
                        + "| session not warmed | " + cold.cells() + " |\n"
                        + "| session warmed (as the library does after a refused acquire) | " + warm.cells() + " |\n\n"
                        + String.format(
                                Locale.ROOT, "Cold ÷ warmed (p50, same run): %.1f×.%n", cold.p50() / warm.p50());
        Map<String, Double> fig = new LinkedHashMap<>();
        fig.put("first.cold.p50", cold.p50());
        fig.put("first.warm.p50", warm.p50());
        return new Section("A new session's first grant", md, fig);
    }

    interface Op {
        void run() throws Exception;
    }

    interface Sql {
        int run(Connection c) throws SQLException;
    }

    // ================================================================ run

    /** Runs every scenario, the long run at 500 ms leases alongside the others. */
    public List<Section> runAll() throws Exception {
        List<Section> out = new ArrayList<>();
        out.add(withLoad(interleaved()));
        out.add(withLoad(firstGrant()));
        CompletableFuture<Section> soak = soak(sizes.soak());
        out.add(withLoad(handoff()));
        out.add(withLoad(failover(Duration.ofSeconds(1), sizes.failovers1s())));
        if (sizes.failovers500ms() > 0) {
            out.add(withLoad(failover(Duration.ofMillis(500), sizes.failovers500ms())));
        }
        out.add(withLoad(standbys()));
        out.add(withLoad(library()));
        out.add(withLoad(scale()));
        out.add(soak.get());
        return out;
    }

    private static Section withLoad(Section s) {
        return new Section(
                s.title(),
                s.markdown() + "\nLoad average (1/5/15 min) at the end of this scenario: " + loadAverage() + ".\n",
                s.figures());
    }

    static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split(" ");
            return f[0] + " / " + f[1] + " / " + f[2];
        } catch (Exception e) {
            return "unknown";
        }
    }

    public static String render(List<Section> sections) {
        StringBuilder sb = new StringBuilder();
        for (Section s : sections) {
            sb.append("### ")
                    .append(s.title())
                    .append("\n\n")
                    .append(s.markdown())
                    .append('\n');
            if (s.figures().containsKey("load")) {
                sb.append("(load average at the end of this scenario: ")
                        .append(s.figures().get("load"))
                        .append(")\n\n");
            }
        }
        return sb.toString();
    }

    public static void main(String[] args) throws Exception {
        boolean full = args.length == 0 || !args[0].equals("smoke");
        Path out = Path.of(args.length > 1 ? args[1] : "target/bench/harness.md");
        try (BenchDatabase db = BenchDatabase.start()) {
            Harness h = new Harness(db, full ? Sizes.full() : Sizes.smoke());
            List<Section> sections = h.runAll();
            String text = render(sections);
            Files.createDirectories(out.toAbsolutePath().getParent());
            Files.writeString(out, text);
            System.out.println(text);
            Map<String, Double> all = new HashMap<>();
            sections.forEach(s -> all.putAll(s.figures()));
            System.out.println(all);
        }
    }
}
