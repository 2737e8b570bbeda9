package dev.pglease.group;

import dev.pglease.bench.BenchDatabase;
import java.time.Duration;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * One measurement of {@link GroupScale}: start the members, wait for a balanced group, measure a window of steady
 * state, then one more member joins and the rebalance is timed and its moves counted. The report is printed and
 * kept.
 */
final class GroupScaleRun {

    /**
     * What one run measured.
     *
     * @param settledMs       from the first member's start to a balanced group (-1: not within the limit)
     * @param window          the steady-state window
     * @param joinMs          from the newcomer's start to a balanced group again (-1: not within the limit)
     * @param moved           shards whose holder changed across the join
     * @param movedElsewhere  of those, shards that did not go to the newcomer (a sticky join moves none)
     * @param newcomerShards  shards the newcomer holds once the group is balanced again
     * @param report          the whole report, as printed
     */
    record Result(
            GroupScale.Settings settings,
            long settledMs,
            GroupScale.Window window,
            long joinMs,
            int moved,
            int movedElsewhere,
            int newcomerShards,
            String report) {
        double renewalsPerMemberPerRetryPeriod() {
            return window.perMemberPerRetryPeriod("group_renew", settings.members(), settings.retryPeriod());
        }

        int joinLimit() {
            int m = settings.members() + 1;
            return (settings.shards() + m - 1) / m;
        }
    }

    private GroupScaleRun() {}

    static Result run(BenchDatabase db, GroupScale.Settings s, Duration window, long settleLimitMs)
            throws InterruptedException {
        String load0 = load();
        try (GroupScale scale = new GroupScale(db, s)) {
            long start = System.nanoTime();
            scale.joinAll(s.members());
            long settled = scale.awaitBalanced(settleLimitMs);
            long settledMs = settled < 0 ? -1 : (System.nanoTime() - start) / 1_000_000;
            Thread.sleep(Math.min(2 * s.leaseDuration().toMillis(), 5_000)); // past the joins' reads
            GroupScale.Window w = scale.measure(window);
            Map<Integer, String> before = new HashMap<>(scale.owners());
            long joinStart = System.nanoTime();
            String newcomer = scale.join().pglease.holderId();
            long joined = scale.awaitBalanced(settleLimitMs);
            long joinMs = joined < 0 ? -1 : (System.nanoTime() - joinStart) / 1_000_000;
            Map<Integer, String> after = scale.owners();
            int moved = 0;
            int movedElsewhere = 0;
            int newcomerShards = 0;
            for (int k = 0; k < s.shards(); k++) {
                if (newcomer.equals(after.get(k))) {
                    newcomerShards++;
                }
                if (!Objects.equals(before.get(k), after.get(k))) {
                    moved++;
                    if (!newcomer.equals(after.get(k))) {
                        movedElsewhere++;
                    }
                }
            }
            String report = report(s, settledMs, w, joinMs, moved, movedElsewhere, load0, load(), db);
            System.out.println(report);
            return new Result(s, settledMs, w, joinMs, moved, movedElsewhere, newcomerShards, report);
        }
    }

    private static String report(
            GroupScale.Settings s,
            long settledMs,
            GroupScale.Window w,
            long joinMs,
            int moved,
            int movedElsewhere,
            String load0,
            String load1,
            BenchDatabase db) {
        int m = s.members() + 1;
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(
                Locale.ROOT,
                "lease group scale: %d shards over %d members in one JVM, %s (lease / renew deadline / retry), "
                        + "PostgreSQL %s on the same machine (%d cores)%n",
                s.shards(),
                s.members(),
                s.timing(),
                db.query("SHOW server_version").get(0)[0],
                Runtime.getRuntime().availableProcessors()));
        sb.append("load before: ")
                .append(load0)
                .append("; after: ")
                .append(load1)
                .append('\n');
        sb.append(String.format(
                Locale.ROOT,
                "first balanced: %s after the first member started%n",
                settledMs < 0 ? "not" : settledMs + " ms"));
        sb.append(String.format(
                Locale.ROOT,
                "steady state over %.1f s: %.2f renewal statements (group_renew) per member per retry period; "
                        + "group reads (group_state) %.2f per member per second%n",
                w.seconds(),
                w.perMemberPerRetryPeriod("group_renew", s.members(), s.retryPeriod()),
                w.calls("group_state") / (double) s.members() / w.seconds()));
        sb.append(String.format(
                Locale.ROOT,
                "server CPU %.2f cores, members' JVM CPU %.2f cores, WAL %.1f kB/s; churn: %d grants assigned, %d "
                        + "revoked; %d of %d samples with a shard not held%n",
                w.serverCpuCores(),
                w.clientCpuCores(),
                w.walBytesPerSecond() / 1024,
                w.assigned(),
                w.revoked(),
                w.incomplete(),
                w.samples()));
        sb.append(w.table());
        sb.append(String.format(
                Locale.ROOT,
                "one join (%d to %d members): %s, %d shards moved, %d of them not to the newcomer (at most ceil(%d/%d)"
                        + " = %d, all to the newcomer)%n",
                s.members(),
                m,
                joinMs < 0 ? "not balanced within the limit" : "balanced " + joinMs + " ms after the newcomer started",
                moved,
                movedElsewhere,
                s.shards(),
                m,
                (s.shards() + m - 1) / m));
        return sb.toString();
    }

    static String load() {
        try {
            String[] f = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/loadavg"))
                    .trim()
                    .split("\\s+");
            return "load average " + f[0] + " " + f[1] + " " + f[2];
        } catch (java.io.IOException e) {
            return "load average unknown";
        }
    }
}
