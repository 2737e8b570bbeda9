package dev.pglease.bench;

import dev.pglease.PgLease;
import dev.pglease.cli.NodeProcess;
import java.sql.Timestamp;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Failover and handoff through real {@code pglease node} processes, timed from the moment the harness signals the
 * leader: SIGTERM (graceful handoff, with a breakdown of where the time goes) and SIGKILL (crash takeover with and
 * without fast failover). All times are wall-clock milliseconds on this one machine (the nodes' JSON events, the
 * database's {@code lease_events.at}, the harness), so they can be subtracted.
 */
public final class NodeTimings {

    private final BenchDatabase db;

    public NodeTimings(BenchDatabase db) {
        this.db = db;
    }

    private String[] args(String schema, String lease, Duration leaseDuration, String label, boolean fast) {
        long ms = leaseDuration.toMillis();
        List<String> a = new ArrayList<>(List.of(
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
                "--trace"));
        if (fast) {
            a.add("--fast-failover");
        }
        return a.toArray(String[]::new);
    }

    /** The outcome of one scenario: a markdown table and named figures (milliseconds). */
    public record Result(String title, String markdown, Map<String, Double> figures) {}

    private interface Signal {
        void send(NodeProcess leader) throws Exception;
    }

    /**
     * Two nodes; the leader gets SIGTERM once the standby has been up for {@code standbyUp} (at least until its first
     * acquire attempt); a fresh node replaces the leader after it exits.
     */
    public Result handoff(Duration leaseDuration, int iterations, Duration standbyUp) throws Exception {
        Map<String, List<Double>> parts = new LinkedHashMap<>();
        for (String k : List.of(
                "total", "toReleasedEvent", "toReleaseCommitted", "releaseToGrant", "grantToElected", "toExit")) {
            parts.put(k, new ArrayList<>());
        }
        run(
                "handoff",
                leaseDuration,
                iterations,
                false,
                standbyUp,
                leader -> leader.process().toHandle().destroy(),
                (signalled, leader, standby, schema, lease, token) -> {
                    Map<String, Object> elected = standby.await(
                            e -> "elected".equals(e.get("event")) && ((Number) e.get("token")).longValue() > token,
                            10_000);
                    leader.process().waitFor(10, TimeUnit.SECONDS);
                    long exited = System.currentTimeMillis();
                    double releasedEvent = leader.events().stream()
                            .filter(e -> "released".equals(e.get("event")))
                            .mapToDouble(e -> ((Number) e.get("t")).doubleValue())
                            .findFirst()
                            .orElse(Double.NaN);
                    double released = eventAt(schema, lease, "released", token);
                    double granted = eventAt(schema, lease, null, token + 1);
                    double electedAt = ((Number) elected.get("t")).doubleValue();
                    parts.get("total").add(electedAt - signalled);
                    parts.get("toReleasedEvent").add(releasedEvent - signalled);
                    parts.get("toReleaseCommitted").add(released - signalled);
                    parts.get("releaseToGrant").add(granted - released);
                    parts.get("grantToElected").add(electedAt - granted);
                    parts.get("toExit").add((double) exited - signalled);
                });
        String[] labels = {
            "SIGTERM → standby's `elected` event (total)",
            "SIGTERM → leader's `released` event",
            "SIGTERM → release committed (database)",
            "release → standby's grant (database)",
            "standby's grant → its `elected` event",
            "SIGTERM → leader process exited"
        };
        String standby = standbyUp.isZero()
                ? "a standby started moments before"
                : "a standby up for " + standbyUp.toSeconds() + " s";
        StringBuilder md = new StringBuilder("| " + leaseDuration.toMillis() + " ms leases, 2 nodes, " + standby
                + " | n | p50 ms | p90 ms"
                + " | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|\n");
        Map<String, Double> fig = new LinkedHashMap<>();
        int i = 0;
        for (Map.Entry<String, List<Double>> p : parts.entrySet()) {
            Stats s = Stats.of(p.getValue());
            md.append("| ").append(labels[i++]).append(" | ").append(s.cells()).append(" |\n");
            String key = "node.handoff" + (standbyUp.isZero() ? "" : ".settled") + "." + p.getKey();
            fig.put(key + ".p50", s.p50());
            fig.put(key + ".p99", s.p99());
        }
        return new Result("Graceful handoff through node processes (SIGTERM), " + standby, md.toString(), fig);
    }

    /** Two nodes; the leader gets SIGKILL; a fresh node replaces it. */
    public Result crash(Duration leaseDuration, int iterations, boolean fast) throws Exception {
        List<Double> total = new ArrayList<>();
        run(
                "crash",
                leaseDuration,
                iterations,
                fast,
                Duration.ZERO,
                leader -> leader.process().destroyForcibly(),
                (signalled, leader, standby, schema, lease, token) -> {
                    Map<String, Object> elected = standby.await(
                            e -> "elected".equals(e.get("event")) && ((Number) e.get("token")).longValue() > token,
                            leaseDuration.toMillis() * 3);
                    total.add(((Number) elected.get("t")).doubleValue() - signalled);
                    leader.process().waitFor(10, TimeUnit.SECONDS);
                });
        Stats s = Stats.of(total);
        String mode = fast ? "fast failover on" : "fast failover off";
        String md = "| " + leaseDuration.toMillis() + " ms leases, 2 nodes, " + mode + " | n | p50 ms | p90 ms | p99 ms"
                + " | max ms |\n|---|---:|---:|---:|---:|---:|\n"
                + "| kill -9 → standby's `elected` event | " + s.cells() + " |\n";
        String key = "node.crash." + (fast ? "fast" : "plain");
        return new Result(
                "Crash takeover through node processes (kill -9, " + mode + ")",
                md,
                Map.of(key + ".p50", s.p50(), key + ".p99", s.p99()));
    }

    private interface Measure {
        void after(
                long signalledMillis, NodeProcess leader, NodeProcess standby, String schema, String lease, long token)
                throws Exception;
    }

    private void run(
            String prefix,
            Duration leaseDuration,
            int iterations,
            boolean fast,
            Duration standbyUp,
            Signal signal,
            Measure measure)
            throws Exception {
        String schema = prefix + ProcessHandle.current().pid() + "_" + System.nanoTime() % 100000;
        PgLease.migrate(db.dataSource(), schema);
        String lease = prefix;
        List<NodeProcess> nodes = new ArrayList<>();
        int counter = 0;
        try {
            for (int i = 0; i < 2; i++) {
                nodes.add(NodeProcess.start(args(schema, lease, leaseDuration, prefix + "-" + counter++, fast)));
            }
            for (NodeProcess n : nodes) {
                n.await(NodeProcess.event("started"), 60_000);
            }
            for (int it = 0; it < iterations; it++) {
                NodeProcess leader = null;
                long token = 0;
                long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (leader == null && System.nanoTime() < until) {
                    List<Object[]> rows = db.query("SELECT holder, token FROM " + schema + ".leases WHERE name = '"
                            + lease + "' AND expires_at > clock_timestamp()");
                    if (!rows.isEmpty()) {
                        String holder = (String) rows.get(0)[0];
                        token = ((Number) rows.get(0)[1]).longValue();
                        for (NodeProcess n : nodes) {
                            if (holder.equals(started(n))) {
                                leader = n;
                            }
                        }
                    }
                    Thread.sleep(20);
                }
                if (leader == null) {
                    throw new IllegalStateException("no node leads " + lease);
                }
                NodeProcess standby = nodes.get(nodes.get(0) == leader ? 1 : 0);
                // the standby is in place: it has tried once (and, with fast failover, waits for the lock)
                long ready = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (standby.events().stream().noneMatch(e -> "acquire".equals(e.get("event")))
                        && System.nanoTime() < ready) {
                    Thread.sleep(10);
                }
                Thread.sleep(200);
                long upSince = startedAt(standby);
                while (System.currentTimeMillis() - upSince < standbyUp.toMillis()) {
                    Thread.sleep(10);
                }
                long signalled = System.currentTimeMillis();
                signal.send(leader);
                measure.after(signalled, leader, standby, schema, lease, token);
                leader.close();
                nodes.remove(leader);
                NodeProcess fresh =
                        NodeProcess.start(args(schema, lease, leaseDuration, prefix + "-" + counter++, fast));
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
    }

    private static long startedAt(NodeProcess n) {
        for (Map<String, Object> e : n.events()) {
            if ("started".equals(e.get("event"))) {
                return ((Number) e.get("t")).longValue();
            }
        }
        return System.currentTimeMillis();
    }

    private static String started(NodeProcess n) {
        for (Map<String, Object> e : n.events()) {
            if ("started".equals(e.get("event"))) {
                return (String) e.get("holder");
            }
        }
        return null;
    }

    /** Wall-clock milliseconds of the lease event of {@code kind} (any grant when null) with {@code token}. */
    private double eventAt(String schema, String lease, String kind, long token) {
        List<Object[]> rows = db.query("SELECT at FROM " + schema + ".lease_events WHERE name = '" + lease
                + "' AND token = " + token
                + (kind == null ? " AND kind IN ('acquired', 'taken_over')" : " AND kind = '" + kind + "'")
                + " ORDER BY id DESC LIMIT 1");
        if (rows.isEmpty()) {
            return Double.NaN;
        }
        Timestamp at = (Timestamp) rows.get(0)[0];
        return at.getTime() + (at.getNanos() % 1_000_000) / 1e6;
    }
}
