package dev.pglease.bench;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.PgLease;
import dev.pglease.cli.NodeProcess;
import dev.pglease.testkit.CpuStarvation;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * No false leader changes from starved candidates: three {@code pglease node} processes per timing set run at nice 19
 * against four busy loops at nice 0 on the machine's cores (the comparison's starvation; the database competes at
 * nice 0), with no fault injected, so every election in the window is a false leader change. Both timing sets (the
 * comparison's 4 s / 3 s / 1 s and the defaults) are starved at once. The run fails on any change of leader (holder
 * or token) and prints the resumptions (a leader that stepped down at its deadline and led again with the same token),
 * every revocation with its reason, and the renewal round trips. Run with {@code ./mvnw test -Ptargets
 * -Dtest=StarvationTargetTest -Dpglease.starvation.minutes=10}; it writes {@code target/starvation.md}.
 */
@Tag("targets")
class StarvationTargetTest {

    private static final double MINUTES = Double.parseDouble(System.getProperty("pglease.starvation.minutes", "10"));
    private static final int CANDIDATES = 3;
    private static final int BUSY_LOOPS = 4;

    record Timings(String label, Duration leaseDuration, Duration renewDeadline, Duration retryPeriod) {}

    record Set(Timings timings, String schema, List<NodeProcess> nodes) {}

    @Test
    void starvedCandidatesKeepTheirLeader() throws Exception {
        List<Timings> timings = List.of(
                new Timings(
                        "comparison (4 s / 3 s / 1 s)",
                        Duration.ofSeconds(4),
                        Duration.ofSeconds(3),
                        Duration.ofSeconds(1)),
                new Timings(
                        "defaults (10 s / 6 s / 2 s)",
                        Duration.ofSeconds(10),
                        Duration.ofSeconds(6),
                        Duration.ofSeconds(2)));
        List<Set> sets = new ArrayList<>();
        String loadBefore = Harness.loadAverage();
        StringBuilder md = new StringBuilder();
        boolean clean = true;
        try (BenchDatabase db = BenchDatabase.start()) {
            try {
                int n = 0;
                for (Timings t : timings) {
                    String schema =
                            "starve" + n++ + "_" + ProcessHandle.current().pid();
                    PgLease.migrate(db.dataSource(), schema);
                    List<NodeProcess> nodes = new ArrayList<>();
                    for (int i = 0; i < CANDIDATES; i++) {
                        nodes.add(NodeProcess.start(
                                "--jdbc-url",
                                db.jdbcUrl(),
                                "--schema",
                                schema,
                                "--lease",
                                "starved",
                                "--lease-duration",
                                t.leaseDuration().toMillis() + "ms",
                                "--renew-deadline",
                                t.renewDeadline().toMillis() + "ms",
                                "--retry-period",
                                t.retryPeriod().toMillis() + "ms",
                                "--holder-label",
                                "s" + n + "-" + i,
                                "--trace"));
                    }
                    sets.add(new Set(t, schema, nodes));
                }
                for (Set s : sets) {
                    awaitLeader(s);
                }
                Thread.sleep(2_000); // every node past start-up (JIT, first statements) before the starvation
                for (Set s : sets) {
                    for (NodeProcess node : s.nodes()) {
                        CpuStarvation.renice(node.pid(), CpuStarvation.STARVED_NICE);
                    }
                }
                long t0 = System.currentTimeMillis();
                try (CpuStarvation loops = CpuStarvation.busyLoops(BUSY_LOOPS)) {
                    Thread.sleep((long) (MINUTES * 60_000));
                }
                long t1 = System.currentTimeMillis();
                String loadAfter = Harness.loadAverage();
                md.append(String.format(
                        Locale.ROOT,
                        "%d candidates per timing set at nice %d, %d busy loops at nice 0, %.1f min, %d CPUs.%n%n"
                                + "Load average (1/5/15 min) before: %s; at the end of the window: %s.%n%n",
                        CANDIDATES,
                        CpuStarvation.STARVED_NICE,
                        BUSY_LOOPS,
                        (t1 - t0) / 60_000.0,
                        Runtime.getRuntime().availableProcessors(),
                        loadBefore,
                        loadAfter));
                md.append("| timings | leader changes | same leader resumed | revocations (reason) | renew round trip "
                        + "p50 / p99 / max ms | longest gap between successful renewals ms |\n"
                        + "|---|---:|---:|---|---|---:|\n");
                for (Set s : sets) {
                    clean &= report(s, t0, t1, md);
                }
            } finally {
                for (Set s : sets) {
                    for (NodeProcess node : s.nodes()) {
                        CpuStarvation.renice(node.pid(), 0);
                        node.close();
                    }
                }
            }
        }
        Path out = Path.of("target", "starvation.md");
        Files.createDirectories(out.getParent());
        Files.writeString(out, md.toString());
        System.out.println(md);
        assertThat(clean).as("no leader change while starved:%n%s", md).isTrue();
    }

    private static void awaitLeader(Set s) throws InterruptedException {
        long until = System.currentTimeMillis() + 60_000;
        while (System.currentTimeMillis() < until) {
            for (NodeProcess node : s.nodes()) {
                if (node.events().stream().anyMatch(e -> "elected".equals(e.get("event")))) {
                    return;
                }
            }
            Thread.sleep(50);
        }
        throw new IllegalStateException("no leader among " + s.timings().label() + " within 60 s");
    }

    /**
     * One row: leader changes inside [t0, t1] (an election of another holder or token than the current leader's),
     * resumptions (the same holder and token elected again after a step-down at the deadline), revocations with
     * their reasons, renewal round trips and the longest gap between successful renewals. Returns whether no
     * leader changed.
     */
    private static boolean report(Set s, long t0, long t1, StringBuilder md) {
        List<Map<String, Object>> elected = new ArrayList<>();
        Map<String, Integer> revocations = new TreeMap<>();
        List<Double> roundTrips = new ArrayList<>();
        double longestGap = 0;
        for (NodeProcess node : s.nodes()) {
            double lastSent = Double.NaN;
            for (Map<String, Object> e : List.copyOf(node.events())) {
                double t = ((Number) e.get("t")).doubleValue();
                String event = (String) e.get("event");
                if ("elected".equals(event) && t <= t1) {
                    elected.add(e);
                }
                if (t < t0 || t > t1) {
                    continue;
                }
                if ("revoked".equals(event) || "released".equals(event)) {
                    revocations.merge(String.valueOf(e.get("reason")), 1, Integer::sum);
                } else if ("renew".equals(event) && "ok".equals(e.get("result"))) {
                    double sent = ((Number) e.get("sent")).doubleValue();
                    roundTrips.add(t - sent);
                    if (!Double.isNaN(lastSent)) {
                        longestGap = Math.max(longestGap, sent - lastSent);
                    }
                    lastSent = sent;
                }
            }
        }
        elected.sort(java.util.Comparator.comparingDouble(e -> ((Number) e.get("t")).doubleValue()));
        int changes = 0;
        int resumed = 0;
        String leader = null;
        for (Map<String, Object> e : elected) {
            String who = e.get("holder") + "#" + e.get("token");
            if (((Number) e.get("t")).doubleValue() >= t0 && leader != null) {
                if (who.equals(leader)) {
                    resumed++;
                } else {
                    changes++;
                }
            }
            leader = who;
        }
        Stats rt = Stats.of(roundTrips);
        md.append("| ")
                .append(s.timings().label())
                .append(" | ")
                .append(changes)
                .append(" | ")
                .append(resumed)
                .append(" | ")
                .append(revocations.isEmpty() ? "none" : revocations.toString())
                .append(" | ")
                .append(
                        rt.n() == 0
                                ? "no renewals"
                                : Stats.f(rt.p50()) + " / " + Stats.f(rt.p99()) + " / " + Stats.f(rt.max()))
                .append(" | ")
                .append(Stats.f(longestGap))
                .append(" |\n");
        return changes == 0;
    }
}
