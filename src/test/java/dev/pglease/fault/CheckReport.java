package dev.pglease.fault;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/** What the checker found: violations (first one first), lost acknowledged acquires, failover times by kind. */
public final class CheckReport {
    private static final int CONTEXT_OPS = 12;

    private final History history;
    private final List<Violation> violations;
    private final int lostAckedAcquires;
    private final Map<FaultKind, List<Long>> failoverMs;
    private final List<Window> windows;
    private String groupSummary;

    /**
     * One liveness window of invariant 7.
     *
     * @param fault      the fault that took the leader away
     * @param failoverMs time to the first grant to another holder, null if none came
     * @param lagMs      largest scheduling lag sampled in the window (-1: no sample)
     * @param boundMs    the window's bound (fixed part + lag, capped)
     * @param unmeasured why the window was not measured, null if it was
     * @param lateMs     how long after the fault the window opened (the leader's grant was renewed after it)
     */
    public record Window(FaultRecord fault, Long failoverMs, long lagMs, long boundMs, String unmeasured, long lateMs) {
        public boolean measured() {
            return unmeasured == null;
        }
    }

    CheckReport(
            History history,
            List<Violation> violations,
            int lostAckedAcquires,
            Map<FaultKind, List<Long>> failoverMs,
            List<Window> windows) {
        this.history = history;
        this.violations = List.copyOf(violations);
        this.lostAckedAcquires = lostAckedAcquires;
        this.failoverMs = Checker.sorted(failoverMs);
        this.windows = List.copyOf(windows);
    }

    /** What the group invariants checked (a group run), or null. */
    public String groupSummary() {
        return groupSummary;
    }

    void groupSummary(String summary) {
        this.groupSummary = summary;
    }

    /** The liveness windows, measured or not. */
    public List<Window> windows() {
        return windows;
    }

    /** Share of bounded windows that were measured (1.0 when there were none). */
    public double measuredShare() {
        return windows.isEmpty()
                ? 1.0
                : windows.stream().filter(Window::measured).count() / (double) windows.size();
    }

    /** Every liveness window: failover time beside its measured lag and bound, and the unmeasured ones with why. */
    public String windowTable() {
        long t0 = history.t0();
        StringBuilder sb = new StringBuilder();
        long measured = windows.stream().filter(Window::measured).count();
        sb.append(String.format(
                "liveness windows: %d bounded, %d measured (%.0f %%), %d unmeasured%n",
                windows.size(), measured, 100 * measuredShare(), windows.size() - measured));
        sb.append(String.format(
                "| %-14s | %-40s | %8s | %10s | %8s | %8s | %-40s |%n",
                "fault", "kind", "opened", "failover", "lag", "bound", "unmeasured because"));
        for (Window w : windows) {
            sb.append(String.format(
                    "| %-14s | %-40s | %8s | %10s | %8s | %8s | %-40s |%n",
                    "#" + w.fault().index() + " " + Op.rel(w.fault().startMs(), t0),
                    w.fault().kind().label(),
                    "+" + w.lateMs() + " ms",
                    w.failoverMs() == null ? "none" : w.failoverMs() + " ms",
                    w.lagMs() < 0 ? "?" : w.lagMs() + " ms",
                    w.boundMs() + " ms",
                    w.measured() ? "" : w.unmeasured()));
        }
        return sb.toString();
    }

    public History history() {
        return history;
    }

    public List<Violation> violations() {
        return violations;
    }

    public boolean valid() {
        return violations.isEmpty();
    }

    public int lostAckedAcquires() {
        return lostAckedAcquires;
    }

    public Map<FaultKind, List<Long>> failoverMs() {
        return failoverMs;
    }

    /** Whether some violation of the given invariant was found. */
    public boolean violates(int invariant) {
        return violations.stream().anyMatch(v -> v.invariant() == invariant);
    }

    public Map<Integer, Integer> countsByInvariant() {
        Map<Integer, Integer> m = new java.util.TreeMap<>();
        for (Violation v : violations) {
            m.merge(v.invariant(), 1, Integer::sum);
        }
        return m;
    }

    /** The report: a summary line, then the first violation with the surrounding history. */
    public String render() {
        StringBuilder sb = new StringBuilder();
        if (violations.isEmpty()) {
            sb.append("checker: ")
                    .append(history.ops().size())
                    .append(" operations, ")
                    .append(history.accepts().size())
                    .append(" accepted writes, ")
                    .append(history.leaseEvents().size())
                    .append(" lease events: all invariants hold\n");
            return sb.toString();
        }
        sb.append("checker: ")
                .append(violations.size())
                .append(" violation(s) ")
                .append(countsByInvariant())
                .append('\n');
        Violation first = violations.get(0);
        sb.append("FIRST VIOLATION: invariant ").append(first.name()).append('\n');
        sb.append("  ").append(first.message()).append('\n');
        for (String e : first.evidence()) {
            sb.append("  evidence: ").append(e).append('\n');
        }
        sb.append(surrounding(first));
        if (violations.size() > 1) {
            sb.append("other violations:\n");
            violations.stream()
                    .skip(1)
                    .limit(10)
                    .forEach(v -> sb.append("  [")
                            .append(v.name())
                            .append("] ")
                            .append(v.message())
                            .append('\n'));
        }
        return sb.toString();
    }

    /** The operations around a violation (and the ones it names), with the faults active at the time. */
    public String surrounding(Violation v) {
        long t0 = history.t0();
        List<Op> ops = new ArrayList<>(history.ops());
        ops.sort(Comparator.comparingLong(Op::completeMs).thenComparingLong(Op::index));
        int center = 0;
        for (int i = 0; i < ops.size(); i++) {
            if (ops.get(i).completeMs() <= v.atMs()) {
                center = i;
            }
        }
        TreeSet<Integer> shown = new TreeSet<>();
        for (int i = Math.max(0, center - CONTEXT_OPS); i < Math.min(ops.size(), center + CONTEXT_OPS); i++) {
            shown.add(i);
        }
        for (int i = 0; i < ops.size(); i++) {
            if (v.ops().contains(ops.get(i).index())) {
                shown.add(i);
            }
        }
        StringBuilder sb = new StringBuilder();
        sb.append("  history around ")
                .append(Op.rel(v.atMs(), t0))
                .append(" (times relative to run start; * = named")
                .append(" in the violation):\n");
        int last = -2;
        for (int i : shown) {
            if (i != last + 1) {
                sb.append("    ...\n");
            }
            Op op = ops.get(i);
            sb.append(v.ops().contains(op.index()) ? "  * " : "    ")
                    .append(op.render(t0))
                    .append('\n');
            last = i;
        }
        for (FaultRecord f : history.faults()) {
            long end = f.endMs() < 0 ? Long.MAX_VALUE : f.endMs();
            if (f.startMs() <= v.atMs() + 5000 && end >= v.atMs() - 5000) {
                sb.append("    near: ").append(f.render(t0)).append('\n');
            }
        }
        return sb.toString();
    }

    /** Faults injected, by kind. */
    public Map<FaultKind, Integer> faultsByKind() {
        Map<FaultKind, Integer> m = new EnumMap<>(FaultKind.class);
        for (FaultRecord f : history.faults()) {
            m.merge(f.kind(), 1, Integer::sum);
        }
        return m;
    }

    /** The end-of-run table. */
    public String table(String title) {
        StringBuilder sb = new StringBuilder();
        sb.append(title).append('\n');
        sb.append(String.format(
                "| %-40s | %6s | %12s | %12s | %8s |%n",
                "fault kind", "count", "failover p50", "failover p99", "measured"));
        sb.append("|")
                .append("-".repeat(42))
                .append("|")
                .append("-".repeat(8))
                .append("|")
                .append("-".repeat(14))
                .append("|")
                .append("-".repeat(14))
                .append("|")
                .append("-".repeat(10))
                .append("|\n");
        int total = 0;
        for (Map.Entry<FaultKind, Integer> e : faultsByKind().entrySet()) {
            List<Long> fo = failoverMs.getOrDefault(e.getKey(), List.of());
            total += e.getValue();
            sb.append(String.format(
                    "| %-40s | %6d | %12s | %12s | %8s |%n",
                    e.getKey().label(),
                    e.getValue(),
                    fo.isEmpty() ? "-" : percentile(fo, 50) + " ms",
                    fo.isEmpty() ? "-" : percentile(fo, 99) + " ms",
                    fo.isEmpty() ? "-" : String.valueOf(fo.size())));
        }
        sb.append(String.format("| %-40s | %6d | %12s | %12s | %8s |%n", "total", total, "", "", ""));
        long writes =
                history.ops().stream().filter(o -> o.kind() == Op.Kind.WRITE).count();
        long leaseOps = history.ops().stream()
                .filter(o -> o.kind() == Op.Kind.ACQUIRE || o.kind() == Op.Kind.RENEW || o.kind() == Op.Kind.RELEASE)
                .count();
        long reads =
                history.ops().stream().filter(o -> o.kind() == Op.Kind.READ).count();
        sb.append(String.format(
                "operations: %d (lease statements %d, protected writes %d, monitor reads %d); "
                        + "accepted writes in the resource log: %d; lease events: %d%n",
                history.ops().size(),
                leaseOps,
                writes,
                reads,
                history.accepts().size(),
                history.leaseEvents().size()));
        sb.append(String.format(
                "violations: %d %s; lost acknowledged acquires: %d%n",
                violations.size(), countsByInvariant(), lostAckedAcquires));
        sb.append(String.format(
                "scheduling lag (test JVM canary, %d samples): max %d ms over the run%n",
                history.lagSampleCount(), history.maxLag()));
        if (groupSummary != null) {
            sb.append(groupSummary).append('\n');
        }
        sb.append(windowTable());
        return sb.toString();
    }

    static long percentile(List<Long> values, int p) {
        return dev.pglease.testkit.Percentiles.of(values, p);
    }
}
