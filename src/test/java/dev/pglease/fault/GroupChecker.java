package dev.pglease.fault;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.LongStream;

/**
 * Checks the history of a group run: the safety invariants 1-6 for each shard's lease (each shard is a lease of its
 * own), and the invariants of the group itself, from the members' own reports, the kit's reads of the group and the
 * faults:
 *
 * <ul>
 *   <li>8: a shard is owned by one member at a time, by the members' own reports: a grant is owned from its elected
 *       report until its released or revoked report, and never past the latest deadline its member reported for it
 *       (the send time of its last acknowledged acquire or renewal + renewDeadline, on the true clock); grants of
 *       one shard to different members never overlap, except when the database clock's forward shift between the
 *       earlier grant's last renewal and the later grant lets the database grant the later one early (only the fence
 *       keeps writes apart then).</li>
 *   <li>9: liveness: after a member that owns shards is lost (killed, stopped, paused or cut off past its lease,
 *       suspended, or leaving with SIGTERM) while another member is up, every shard it owned is owned again (by
 *       another member, or by the member itself on a new grant once it is back) within leaseDuration + retryPeriod
 *       + {@value #SLACK_MS} ms; after a join, the group is balanced with the newcomer within {@value #JOIN_BALANCED_MS} ms of the newcomer's start. Both plus the scheduling lag
 *       measured in the window (at most {@value Checker#LAG_CAP_MS} ms).</li>
 *   <li>10: whenever the kit found the group settled (no fault active, every running node a live member, no change
 *       for a quiet time), every shard is owned by a live member and shard counts differ by at most one; a group that
 *       did not settle within the kit's limit breaks it too.</li>
 *   <li>11: between two settled states one change of members apart, a join moved at most ⌈N/(M+1)⌉ shards, all to
 *       the newcomer, and a leave moved only the leaver's shards; with no change of members, nothing moved. Not
 *       checked across a fault that ends every grant (a promotion of the database, or the database out of reach for
 *       a lease duration or longer): each shard is taken again then.</li>
 * </ul>
 * Members run with equal weights and priorities.
 */
public final class GroupChecker {

    /** The fixed part of the bound of invariant 9 for a lost member's shards, beyond leaseDuration + retryPeriod. */
    public static final long SLACK_MS = 500;
    /** The bound of invariant 9 for a join, from the newcomer's start to a balanced group. */
    public static final long JOIN_BALANCED_MS = 3000;

    /**
     * The group a run checks.
     *
     * @param name   the group's name (shard k is the lease {@code name/k})
     * @param shards its number of shards
     */
    public record Group(String name, int shards) {
        public String lease(int shard) {
            return name + "/" + shard;
        }
    }

    /**
     * One grant of a shard as its member reported it.
     *
     * @param start        its first elected report
     * @param end          its released or revoked report after the last claim, or its latest deadline, whichever is
     *                     first
     * @param renewSentMs  when the statement that gave it its latest deadline was sent (its acquire or a renewal)
     * @param renewDoneMs  when that statement was answered
     * @param acquireSentMs when the acquire that made the grant was sent (the elected report when none was traced)
     * @param acquireDoneMs when that acquire was answered
     */
    record Grant(
            String lease,
            String node,
            String holder,
            long token,
            long start,
            long end,
            long startOp,
            String why,
            long renewSentMs,
            long renewDoneMs,
            long acquireSentMs,
            long acquireDoneMs) {}

    private final Checker.Config config;
    private final Group group;

    GroupChecker(Checker.Config config, Group group) {
        this.config = config;
        this.group = group;
    }

    private long lossBound() {
        return config.leaseDurationMs() + config.retryPeriodMs() + SLACK_MS;
    }

    CheckReport check(History recorded) {
        DbClock clock = new DbClock(recorded.clockSteps());
        History machine = clock.machine(recorded);
        Map<String, History> parts = new TreeMap<>();
        machine.byLease().forEach((lease, h) -> {
            if (lease.startsWith(group.name() + "/")) {
                parts.put(lease, h);
            }
        });
        Map<String, History> monotonic = clock.monotonic(recorded).byLease();
        List<Violation> violations = new ArrayList<>();
        Set<String> lostAcks = new HashSet<>();
        for (Map.Entry<String, History> e : parts.entrySet()) {
            List<Violation> found = new ArrayList<>();
            Set<String> lost = new HashSet<>();
            Checker.checkSafety(e.getValue(), monotonic.getOrDefault(e.getKey(), e.getValue()), found, lost);
            for (Violation v : found) {
                violations.add(
                        new Violation(v.invariant(), e.getKey() + ": " + v.message(), v.atMs(), v.ops(), v.evidence()));
            }
            lost.forEach(k -> lostAcks.add(e.getKey() + " " + k));
        }
        Map<String, List<Grant>> grants = new TreeMap<>();
        parts.forEach((lease, h) -> grants.put(lease, grants(lease, h.ops())));
        checkOwnership(machine, grants, violations);
        Map<FaultKind, List<Long>> failovers = new EnumMap<>(FaultKind.class);
        List<CheckReport.Window> windows = new ArrayList<>();
        checkLiveness(machine, parts, violations, failovers, windows);
        String settled = checkSettled(machine, violations);
        String moves = checkMoves(machine, violations);
        violations.sort(Comparator.comparingLong(Violation::atMs).thenComparingInt(Violation::invariant));
        CheckReport r = new CheckReport(machine, violations, lostAcks.size(), failovers, windows);
        r.groupSummary("group " + group.name() + ", " + group.shards() + " shards over " + parts.size()
                + " shard leases seen; " + settled + "; " + moves);
        return r;
    }

    // ---- 8: one owner at a time, by the members' own reports ------------------------------------------------------

    /** The grants of {@code lease} as their members reported them, in token order. */
    static List<Grant> grants(String lease, List<Op> ops) {
        Map<String, List<Op>> byGrant = new HashMap<>();
        for (Op op : ops) {
            if (op.holder() != null && op.token() != null && !"monitor".equals(op.node())) {
                byGrant.computeIfAbsent(op.holder() + " " + op.token(), k -> new ArrayList<>())
                        .add(op);
            }
        }
        List<Grant> out = new ArrayList<>();
        for (List<Op> list : byGrant.values()) {
            list.sort(Comparator.comparingLong(Op::completeMs).thenComparingLong(Op::index));
            Op first = null;
            long lastClaim = Long.MIN_VALUE;
            Long deadline = null;
            Op deadlineOp = null;
            Op acquire = null;
            for (Op op : list) {
                if (op.kind() == Op.Kind.ACQUIRE && op.ok() && acquire == null) {
                    acquire = op;
                }
                // ownership is what the member reports to its listener: an acquire the library gave up before
                // reporting it (the assignment moved the shard meanwhile) is released at once and never owned
                boolean claim = op.kind() == Op.Kind.ELECTED;
                if (claim) {
                    if (first == null) {
                        first = op;
                    }
                    lastClaim = Math.max(lastClaim, op.completeMs());
                }
                if ((op.kind() == Op.Kind.ACQUIRE || op.kind() == Op.Kind.RENEW)
                        && op.ok()
                        && op.deadlineMs() != null
                        && (deadline == null || op.deadlineMs() > deadline)) {
                    deadline = op.deadlineMs();
                    deadlineOp = op;
                }
            }
            if (first == null) {
                continue;
            }
            Op close = null;
            for (Op op : list) {
                if ((op.kind() == Op.Kind.RELEASE || op.kind() == Op.Kind.REVOKED) && op.completeMs() >= lastClaim) {
                    close = op;
                    break;
                }
            }
            long end;
            String why;
            if (close != null && (deadline == null || close.completeMs() <= deadline)) {
                end = close.completeMs();
                why = close.kind().name().toLowerCase() + " #" + close.index();
            } else if (deadline != null) {
                end = deadline;
                why = "its latest reported deadline";
            } else {
                end = lastClaim;
                why = "its last report (no deadline reported)";
            }
            Op renewal = deadlineOp != null ? deadlineOp : first;
            Op granted = acquire != null && acquire.completeMs() <= first.completeMs() ? acquire : first;
            out.add(new Grant(
                    lease,
                    first.node(),
                    first.holder(),
                    first.token(),
                    first.completeMs(),
                    end,
                    first.index(),
                    why,
                    renewal.invokeMs(),
                    renewal.completeMs(),
                    granted.invokeMs(),
                    granted.completeMs()));
        }
        out.sort(Comparator.comparingLong(Grant::token).thenComparingLong(Grant::start));
        return out;
    }

    private void checkOwnership(History h, Map<String, List<Grant>> grants, List<Violation> out) {
        int reported = 0;
        for (Map.Entry<String, List<Grant>> e : grants.entrySet()) {
            List<Grant> list = e.getValue();
            for (int j = 0; j < list.size(); j++) {
                Grant y = list.get(j);
                for (int i = 0; i < j; i++) {
                    Grant x = list.get(i);
                    if (x.holder().equals(y.holder()) || x.token() >= y.token() || y.start() >= x.end()) {
                        continue;
                    }
                    if (excused(h, x, y)) {
                        continue;
                    }
                    if (reported++ < 20) {
                        out.add(new Violation(
                                8,
                                e.getKey() + ": " + y.holder() + " reported owning it with token " + y.token()
                                        + " at " + Op.rel(y.start(), h.t0()) + ", " + (x.end() - y.start())
                                        + " ms before " + x.holder() + "'s grant of token " + x.token() + " ended ("
                                        + x.why() + ")",
                                y.start(),
                                List.of(x.startOp(), y.startOp()),
                                List.of()));
                    }
                }
            }
        }
    }

    /**
     * An overlap the members' own reports can not rule out: the database clock moved forward between the earlier
     * holder's last renewal and the later grant far enough for the database to grant it (a forward step ends grants
     * renewed before it early on the clock the database arbitrates with, also a step back to true time after a
     * backward one: only the fence keeps the earlier holder's writes out), or the earlier holder's monotonic clock
     * stopped during a simulated suspend (it still believes its deadline lies ahead: only the fence keeps it safe).
     */
    private boolean excused(History h, Grant x, Grant y) {
        if (clockExplains(h.clockSteps(), config.leaseDurationMs(), x, y)) {
            return true;
        }
        for (FaultRecord f : h.faults()) {
            long end = f.endMs() < 0 ? Long.MAX_VALUE : f.endMs();
            if (f.kind() == FaultKind.SUSPEND_LEADER
                    && f.target().equals(x.node())
                    && x.start() <= end
                    && x.end() >= f.startMs()
                    && f.startMs() <= y.start()) {
                return true;
            }
        }
        return false;
    }

    /**
     * Whether steps of the database clock explain that {@code y} was granted while {@code x} was still owned. The
     * database grants {@code y} once its clock passes {@code x}'s expiry: the last renewal's execution time (between its
     * send and its answer) on the clock's offset then, plus the lease duration. So it can grant {@code y} by
     * {@code y}'s acquire answer only if that answer plus the shift (the highest offset the acquire can have run on, less
     * the lowest the renewal can have run on) reaches the renewal's send plus the lease duration. When {@code y}'s token
     * directly follows {@code x}'s, nobody was granted the shard in between, so the acquire's offset is one in effect
     * while the acquire ran; otherwise an unreported grant in between may have run on any offset since the renewal.
     */
    static boolean clockExplains(List<DbClock.Step> steps, long leaseDurationMs, Grant x, Grant y) {
        if (steps.isEmpty()) {
            return false;
        }
        long from = y.token() == x.token() + 1 ? y.acquireSentMs() : x.renewSentMs();
        long shift = offsetsBetween(steps, from, y.acquireDoneMs()).max().getAsLong()
                - offsetsBetween(steps, x.renewSentMs(), x.renewDoneMs()).min().getAsLong();
        // 1 ms: times are traced in whole milliseconds
        return shift > 0 && (y.acquireDoneMs() + 1) * 1000 + shift >= (x.renewSentMs() + leaseDurationMs) * 1000;
    }

    /** The database clock's offset (µs) at {@code atMs}, kit clock. */
    static long offsetAt(List<DbClock.Step> steps, long atMs) {
        long offset = 0;
        for (DbClock.Step s : steps) {
            if (s.atMs() <= atMs) {
                offset += s.deltaMicros();
            }
        }
        return offset;
    }

    /** The offsets (µs) the database clock had from {@code fromMs} to {@code toMs} (kit clock), in time order. */
    private static LongStream offsetsBetween(List<DbClock.Step> steps, long fromMs, long toMs) {
        return LongStream.concat(
                LongStream.of(offsetAt(steps, fromMs)),
                steps.stream()
                        .filter(s -> s.atMs() > fromMs && s.atMs() <= toMs)
                        .mapToLong(s -> offsetAt(steps, s.atMs())));
    }

    // ---- 9: liveness of the group -------------------------------------------------------------------------------

    private void checkLiveness(
            History h,
            Map<String, History> parts,
            List<Violation> out,
            Map<FaultKind, List<Long>> failovers,
            List<CheckReport.Window> windows) {
        long lastTime = h.t0();
        for (Op op : h.ops()) {
            lastTime = Math.max(lastTime, op.completeMs());
        }
        for (FaultRecord f : h.faults()) {
            CheckReport.Window w;
            if (f.kind() == FaultKind.MEMBER_JOIN) {
                w = joinWindow(h, f, lastTime, out);
            } else if (f.kind().livenessBounded() && f.leaderHolder() != null) {
                w = lossWindow(h, parts, f, lastTime, out);
            } else {
                continue;
            }
            if (w == null) {
                continue;
            }
            windows.add(w);
            if (w.measured() && w.failoverMs() != null) {
                failovers.computeIfAbsent(f.kind(), k -> new ArrayList<>()).add(w.failoverMs());
            }
        }
    }

    /** The group as last read at or before {@code atMs} (null before the first read). */
    private static GroupRecords.Snapshot stateAt(List<GroupRecords.Snapshot> snapshots, long atMs) {
        GroupRecords.Snapshot last = null;
        for (GroupRecords.Snapshot s : snapshots) {
            if (s.atMs() > atMs) {
                break;
            }
            last = s;
        }
        return last;
    }

    private CheckReport.Window lossWindow(
            History h, Map<String, History> parts, FaultRecord f, long lastTime, List<Violation> out) {
        String victim = f.leaderHolder();
        if (!f.leaderLoss()) {
            return new CheckReport.Window(
                    f, null, -1, lossBound(), "no other member with a true-rate clock was up and talking", 0);
        }
        GroupRecords.Snapshot at = stateAt(h.snapshots(), f.startMs());
        Map<Integer, Long> owned = new TreeMap<>();
        if (at != null) {
            at.owners().forEach((shard, o) -> {
                if (o.holder().equals(victim)) {
                    owned.put(shard, o.token());
                }
            });
        }
        if (owned.isEmpty()) {
            return new CheckReport.Window(
                    f, null, -1, lossBound(), "the member owned no shard on the database when it was hit", 0);
        }
        long maxBound = lossBound() + Checker.LAG_CAP_MS;
        long from = Long.MAX_VALUE;
        long late = 0;
        long windowEnd = f.startMs();
        Long worst = null;
        Op worstOp = null;
        String worstShard = null;
        boolean allTaken = true;
        for (Map.Entry<Integer, Long> e : owned.entrySet()) {
            String lease = group.lease(e.getKey());
            History part = parts.get(lease);
            long fromShard = f.startMs();
            if (part != null) {
                for (DbRecords.LeaseVersion v : part.leaseVersions()) {
                    long atMs = v.atMicros() / 1000;
                    if (atMs <= f.startMs()) {
                        continue;
                    }
                    if (atMs >= f.startMs() + maxBound
                            || (v.holder() != null && !v.holder().equals(victim))) {
                        break;
                    }
                    if (v.token() >= e.getValue() && victim.equals(v.holder())) {
                        fromShard = atMs; // the database still renewed the victim's grant after the fault
                    }
                }
            }
            Op first = null;
            if (part != null) {
                for (Op g : part.ops()) {
                    // another member's grant, or the member's own new grant once it is back (a pause or a cut
                    // ends; the shard is owned again either way)
                    if (g.kind() == Op.Kind.ELECTED
                            && g.holder() != null
                            && g.token() != null
                            && g.token() > e.getValue()
                            && g.completeMs() >= fromShard
                            && (first == null || g.completeMs() < first.completeMs())) {
                        first = g;
                    }
                }
            }
            from = Math.min(from, fromShard);
            late = Math.max(late, fromShard - f.startMs());
            if (first == null) {
                allTaken = false;
                windowEnd = Math.max(windowEnd, fromShard + maxBound);
            } else {
                long ms = first.completeMs() - fromShard;
                windowEnd = Math.max(windowEnd, Math.min(first.completeMs(), fromShard + maxBound));
                if (worst == null || ms > worst) {
                    worst = ms;
                    worstOp = first;
                    worstShard = lease;
                }
            }
        }
        long rawLag = h.maxLag(from, windowEnd);
        long bound = lossBound() + Math.max(0, Math.min(Checker.LAG_CAP_MS, rawLag));
        String reason = Checker.otherFault(h.faults(), f, windowEnd);
        if (reason == null) {
            reason = Checker.clockRanAhead(h, f, config.leaseDurationMs());
        }
        if (reason == null && !allTaken && lastTime < from + bound) {
            reason = "the run ended " + (lastTime - from) + " ms after the window opened";
        }
        Long ms = allTaken ? worst : null;
        CheckReport.Window w = new CheckReport.Window(f, ms, rawLag, bound, reason, late);
        if (reason != null) {
            return w;
        }
        if (ms == null || ms > bound) {
            out.add(new Violation(
                    9,
                    "after fault#" + f.index() + " (" + f.kind().label() + ") on " + victim + ", which owned "
                            + owned.size() + " shards, "
                            + (ms == null
                                    ? "not every one of them was owned again within " + bound + " ms"
                                    : "the last of them (" + worstShard + ") was owned again only " + ms + " ms later")
                            + " > bound " + bound + " ms (measured scheduling lag " + rawLag + " ms)",
                    ms == null ? from + bound : worstOp.completeMs(),
                    worstOp == null ? List.of() : List.of(worstOp.index()),
                    List.of(f.render(h.t0()))));
        }
        return w;
    }

    private CheckReport.Window joinWindow(History h, FaultRecord f, long lastTime, List<Violation> out) {
        Op started = null;
        for (Op op : h.ops()) {
            if (op.kind() == Op.Kind.NOTE
                    && f.target().equals(op.node())
                    && op.detail() != null
                    && op.detail().startsWith("started")
                    && op.completeMs() >= f.startMs()
                    && (started == null || op.completeMs() < started.completeMs())) {
                started = op;
            }
        }
        if (started == null || started.holder() == null) {
            return new CheckReport.Window(f, null, -1, JOIN_BALANCED_MS, "the newcomer never reported its start", 0);
        }
        String newcomer = started.holder();
        GroupRecords.Snapshot balanced = null;
        for (GroupRecords.Snapshot s : h.snapshots()) {
            if (s.atMs() >= started.completeMs()
                    && s.members().stream().anyMatch(m -> m.holder().equals(newcomer))
                    && balanced(s)) {
                balanced = s;
                break;
            }
        }
        long from = started.completeMs();
        long windowEnd = balanced != null
                ? Math.min(balanced.atMs(), from + JOIN_BALANCED_MS + Checker.LAG_CAP_MS)
                : from + JOIN_BALANCED_MS + Checker.LAG_CAP_MS;
        long rawLag = h.maxLag(from, windowEnd);
        long bound = JOIN_BALANCED_MS + Math.max(0, Math.min(Checker.LAG_CAP_MS, rawLag));
        String reason = Checker.otherFault(h.faults(), f, windowEnd);
        if (reason == null && balanced == null && lastTime < from + bound) {
            reason = "the run ended " + (lastTime - from) + " ms after the newcomer started";
        }
        Long ms = balanced == null ? null : balanced.atMs() - from;
        CheckReport.Window w = new CheckReport.Window(f, ms, rawLag, bound, reason, from - f.startMs());
        if (reason == null && (ms == null || ms > bound)) {
            out.add(new Violation(
                    9,
                    "after fault#" + f.index() + " (" + f.kind().label() + ": " + newcomer + ") the group was "
                            + (ms == null ? "not balanced within " + bound + " ms" : "balanced only " + ms + " ms")
                            + " after the newcomer started > bound " + bound + " ms (measured scheduling lag "
                            + rawLag + " ms); last state: "
                            + describe(stateAt(h.snapshots(), windowEnd)),
                    ms == null ? from + bound : balanced.atMs(),
                    List.of(started.index()),
                    List.of(f.render(h.t0()))));
        }
        return w;
    }

    private String describe(GroupRecords.Snapshot s) {
        return s == null ? "never read" : s.render(group.shards());
    }

    /** Every shard owned by a live member, and shard counts within one. */
    private boolean balanced(GroupRecords.Snapshot s) {
        if (s.members().isEmpty() || !s.unowned(group.shards()).isEmpty()) {
            return false;
        }
        int min = Integer.MAX_VALUE;
        int max = Integer.MIN_VALUE;
        for (int c : s.counts().values()) {
            min = Math.min(min, c);
            max = Math.max(max, c);
        }
        return max - min <= 1;
    }

    // ---- 10: a settled group is complete and balanced -------------------------------------------------------------

    private String checkSettled(History h, List<Violation> out) {
        int settled = 0;
        int not = 0;
        for (GroupRecords.Settle s : h.settles()) {
            String after = s.faultIndex() < 0 ? "the start" : "fault#" + s.faultIndex();
            if (!s.settled()) {
                not++;
                out.add(new Violation(
                        10,
                        "the group did not settle after " + after + ": " + s.why() + "; last state: "
                                + describe(s.state()),
                        s.atMs(),
                        List.of(),
                        List.of()));
                continue;
            }
            settled++;
            if (!balanced(s.state())) {
                out.add(new Violation(
                        10,
                        "the group settled after " + after + " but not balanced within one: " + describe(s.state()),
                        s.atMs(),
                        List.of(),
                        List.of()));
            }
        }
        return settled + " settled states checked" + (not > 0 ? ", " + not + " waits that never settled" : "");
    }

    // ---- 11: sticky moves ------------------------------------------------------------------------------------------

    private String checkMoves(History h, List<Violation> out) {
        List<GroupRecords.Settle> settled = new ArrayList<>();
        for (GroupRecords.Settle s : h.settles()) {
            if (s.settled()) {
                settled.add(s);
            }
        }
        List<GroupRecords.Snapshot> snapshots = h.snapshots();
        int joins = 0;
        int leaves = 0;
        int stable = 0;
        int skipped = 0;
        int promoted = 0;
        for (int i = 1; i < settled.size(); i++) {
            GroupRecords.Snapshot a = settled.get(i - 1).state();
            GroupRecords.Snapshot b = settled.get(i).state();
            if (everyGrantEndedBetween(h, a.atMs(), b.atMs())) {
                promoted++; // every grant ended: each shard is taken again, by any member
                continue;
            }
            Set<GroupRecords.Member> added = new TreeSet<>();
            Set<GroupRecords.Member> removed = new TreeSet<>();
            Set<GroupRecords.Member> previous = a.members();
            List<Set<GroupRecords.Member>> states = new ArrayList<>();
            for (GroupRecords.Snapshot s : snapshots) {
                if (s.atMs() > a.atMs() && s.atMs() <= b.atMs()) {
                    states.add(s.members());
                }
            }
            states.add(b.members());
            int changes = 0;
            for (Set<GroupRecords.Member> now : states) {
                for (GroupRecords.Member m : now) {
                    if (!previous.contains(m)) {
                        changes++;
                        added.add(m);
                    }
                }
                for (GroupRecords.Member m : previous) {
                    if (!now.contains(m)) {
                        changes++;
                        removed.add(m);
                    }
                }
                previous = now;
            }
            List<Integer> moved = new ArrayList<>();
            for (int shard = 0; shard < group.shards(); shard++) {
                GroupRecords.Owner before = a.owners().get(shard);
                GroupRecords.Owner after = b.owners().get(shard);
                String x = before == null ? null : before.holder();
                String y = after == null ? null : after.holder();
                if (x == null ? y != null : !x.equals(y)) {
                    moved.add(shard);
                }
            }
            String between =
                    "between the settled states at " + Op.rel(a.atMs(), h.t0()) + " and " + Op.rel(b.atMs(), h.t0());
            if (changes == 0) {
                stable++;
                if (!moved.isEmpty()) {
                    out.add(new Violation(
                            11,
                            between + " no member joined or left, yet shards " + moved + " changed owner",
                            b.atMs(),
                            List.of(),
                            List.of(describe(a), describe(b))));
                }
            } else if (changes == 1 && added.size() == 1) {
                joins++;
                String newcomer = added.iterator().next().holder();
                int limit =
                        (group.shards() + b.members().size() - 1) / b.members().size();
                List<Integer> elsewhere = new ArrayList<>();
                for (int shard : moved) {
                    GroupRecords.Owner o = b.owners().get(shard);
                    if (o == null || !o.holder().equals(newcomer)) {
                        elsewhere.add(shard);
                    }
                }
                if (moved.size() > limit || !elsewhere.isEmpty()) {
                    out.add(new Violation(
                            11,
                            between + " " + newcomer + " joined " + (b.members().size() - 1) + " members: "
                                    + moved.size() + " shards moved (at most " + limit + " may)"
                                    + (elsewhere.isEmpty()
                                            ? ""
                                            : ", and shards " + elsewhere
                                                    + " moved to another member than the newcomer"),
                            b.atMs(),
                            List.of(),
                            List.of(describe(a), describe(b))));
                }
            } else if (changes == 1 && removed.size() == 1) {
                leaves++;
                String leaver = removed.iterator().next().holder();
                List<Integer> notTheLeavers = new ArrayList<>();
                for (int shard : moved) {
                    GroupRecords.Owner o = a.owners().get(shard);
                    if (o == null || !o.holder().equals(leaver)) {
                        notTheLeavers.add(shard);
                    }
                }
                if (!notTheLeavers.isEmpty()) {
                    out.add(new Violation(
                            11,
                            between + " only " + leaver + " left, yet shards " + notTheLeavers
                                    + " of other members moved",
                            b.atMs(),
                            List.of(),
                            List.of(describe(a), describe(b))));
                }
            } else {
                skipped++;
            }
        }
        return "moves checked between settled states: " + joins + " one join apart, " + leaves
                + " one leave apart, " + stable + " without a change of members (" + skipped
                + " with several changes, " + promoted
                + " across a promotion or an outage longer than the lease, not checked)";
    }

    /**
     * Whether a fault between the two times ended every grant: a promotion (its new term) or the database out of
     * reach for at least a lease duration (paused, crashed or restarted). A shorter outage that outlasts some
     * members' rows makes them join again, which counts as a change of members.
     */
    private boolean everyGrantEndedBetween(History h, long fromMs, long toMs) {
        for (FaultRecord f : h.faults()) {
            boolean ends = switch (f.kind()) {
                case FAILOVER_SYNC, FAILOVER_ASYNC -> true;
                case PG_PAUSE, PG_CRASH, PG_RESTART -> f.endMs() - f.startMs() >= config.leaseDurationMs();
                default -> false;
            };
            if (ends && f.startMs() < toMs && f.endMs() > fromMs) {
                return true;
            }
        }
        return false;
    }
}
