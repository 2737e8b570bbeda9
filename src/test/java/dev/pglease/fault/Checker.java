package dev.pglease.fault;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Checks a recorded {@link History} against the invariants stated in docs/protocol.md (what each check reads is in
 * docs/faults.md). Pure function of the history: no database, no clock, so it is unit-tested on hand-made histories
 * with planted violations; the negative controls plant each violation again in real processes.
 */
public final class Checker {

    /** The fixed part of the liveness bound beyond leaseDuration + retryPeriod. */
    public static final long LIVENESS_SLACK_MS = 250;
    /** The most a window's measured scheduling lag may add to its liveness bound. */
    public static final long LAG_CAP_MS = 1000;

    /**
     * Timing the run used.
     *
     * @param leaseDurationMs lease duration
     * @param retryPeriodMs   retry period
     */
    public record Config(long leaseDurationMs, long retryPeriodMs) {
        /** leaseDuration + retryPeriod + {@value #LIVENESS_SLACK_MS} ms, before any measured scheduling lag. */
        public long livenessBoundMs() {
            return leaseDurationMs + retryPeriodMs + LIVENESS_SLACK_MS;
        }

        /** The bound with the most a measured lag can add: how long to wait before a window is surely closed. */
        public long maxLivenessBoundMs() {
            return livenessBoundMs() + LAG_CAP_MS;
        }
    }

    private final Config config;
    private final GroupChecker.Group group;

    public Checker(Config config) {
        this(config, null);
    }

    /**
     * A checker of a group run when {@code group} is given: invariants 1-6 per shard lease, and the group's own
     * (see {@link GroupChecker}); of a run with one lease otherwise.
     */
    public Checker(Config config, GroupChecker.Group group) {
        this.config = config;
        this.group = group;
    }

    public CheckReport check(History recorded) {
        if (group != null) {
            return new GroupChecker(config, group).check(recorded);
        }
        DbClock clock = new DbClock(recorded.clockSteps());
        History history = clock.machine(recorded);
        List<Op> ops = history.ops();
        List<Violation> violations = new ArrayList<>();
        Set<String> lostAcks = new HashSet<>();
        checkSafety(history, clock.monotonic(recorded), violations, lostAcks);
        Map<FaultKind, List<Long>> failovers = new EnumMap<>(FaultKind.class);
        List<CheckReport.Window> windows = new ArrayList<>();
        checkLiveness(history, ops, violations, failovers, windows);
        violations.sort(Comparator.comparingLong(Violation::atMs).thenComparingInt(Violation::invariant));
        return new CheckReport(history, violations, lostAcks.size(), failovers, windows);
    }

    /**
     * The safety invariants 1-6 on the history of one lease: {@code history} with its database records on the
     * machine's clock, {@code monotonic} with them on the monotonic database clock (see {@link DbClock}).
     */
    static void checkSafety(History history, History monotonic, List<Violation> out, Set<String> lostAcks) {
        List<Op> ops = history.ops();
        checkSingleHolder(history, ops, out, lostAcks);
        checkRealTimeOrder(ops, out);
        checkAcceptOrder(history, ops, out);
        checkDurability(history, ops, out, lostAcks);
        checkDeadlines(ops, out);
        checkDbIntervals(monotonic, ops, out);
    }

    // ---- 1: a token is granted to at most one holder --------------------------------------------------------------

    private record Claim(long token, String holder, long atMs, String source, Long opIndex) {}

    private static void checkSingleHolder(History h, List<Op> ops, List<Violation> out, Set<String> lostAcks) {
        List<Claim> claims = new ArrayList<>();
        for (Op op : ops) {
            if (op.token() == null || op.holder() == null || !op.ok()) {
                continue;
            }
            switch (op.kind()) {
                case ACQUIRE, RENEW, ELECTED, WRITE, RELEASE ->
                    claims.add(new Claim(
                            op.token(),
                            op.holder(),
                            op.completeMs(),
                            op.kind().name().toLowerCase(),
                            op.index()));
                default -> {}
            }
        }
        for (DbRecords.LeaseEvent e : h.leaseEvents()) {
            if (e.isGrant()) {
                claims.add(new Claim(e.token(), e.holder(), e.atMicros() / 1000, e.render(), null));
            }
        }
        for (DbRecords.Accept a : h.accepts()) {
            if (a.holder() != null) {
                claims.add(new Claim(a.token(), a.holder(), a.atMicros() / 1000, a.render(), null));
            }
        }
        claims.sort(Comparator.comparingLong(Claim::atMs));
        Map<Long, Claim> first = new HashMap<>();
        Set<Long> reported = new HashSet<>();
        for (Claim c : claims) {
            Claim f = first.putIfAbsent(c.token(), c);
            if (f != null && !f.holder().equals(c.holder()) && reported.add(c.token())) {
                List<Long> involved = new ArrayList<>();
                List<String> evidence = new ArrayList<>();
                for (Claim x : List.of(f, c)) {
                    if (x.opIndex() != null) {
                        involved.add(x.opIndex());
                    } else {
                        evidence.add(x.source());
                    }
                }
                out.add(new Violation(
                        1,
                        "token " + c.token() + " granted to " + f.holder() + " (" + sourceName(f) + ") and to "
                                + c.holder() + " (" + sourceName(c) + ")",
                        c.atMs(),
                        involved,
                        evidence));
                // an acknowledged acquire of this token by the first holder was lost
                for (Op op : ops) {
                    if (op.kind() == Op.Kind.ACQUIRE && op.ok() && op.token() != null && op.token() == c.token()) {
                        lostAcks.add(op.holder() + "/" + op.token());
                    }
                }
            }
        }
    }

    private static String sourceName(Claim c) {
        return c.opIndex() != null ? c.source() + " #" + c.opIndex() : "database";
    }

    // ---- 2: real-time order of tokens ---------------------------------------------------------------------------

    private static void checkRealTimeOrder(List<Op> ops, List<Violation> out) {
        List<Op> acquires = new ArrayList<>();
        List<Op> observations = new ArrayList<>();
        for (Op op : ops) {
            if (!op.ok() || op.token() == null) {
                continue;
            }
            if (op.kind() == Op.Kind.ACQUIRE) {
                acquires.add(op);
            }
            if (op.kind() == Op.Kind.ACQUIRE
                    || op.kind() == Op.Kind.RENEW
                    || op.kind() == Op.Kind.READ
                    || op.kind() == Op.Kind.WRITE) {
                observations.add(op);
            }
        }
        sweep(acquires, true, out, "acquire");
        sweep(observations, false, out, "observation");
    }

    /** For every op B, the ops that completed before B was invoked must carry a lower (strict) or no higher token. */
    private static void sweep(List<Op> list, boolean strict, List<Violation> out, String what) {
        List<Op> byComplete = new ArrayList<>(list);
        byComplete.sort(Comparator.comparingLong(Op::completeMs));
        List<Op> byInvoke = new ArrayList<>(list);
        byInvoke.sort(Comparator.comparingLong(Op::invokeMs).thenComparingLong(Op::index));
        int i = 0;
        Op max = null;
        Set<Long> reported = new HashSet<>();
        for (Op b : byInvoke) {
            while (i < byComplete.size() && byComplete.get(i).completeMs() < b.invokeMs()) {
                Op a = byComplete.get(i++);
                if (max == null || a.token() > max.token()) {
                    max = a;
                }
            }
            if (max == null) {
                continue;
            }
            boolean bad = strict ? max.token() >= b.token() : max.token() > b.token();
            if (bad && reported.add(b.index())) {
                out.add(new Violation(
                        2,
                        (strict
                                ? "acquire #" + max.index() + " (token " + max.token() + ") completed before acquire #"
                                        + b.index() + " started, which got token " + b.token()
                                : what + " #" + b.index() + " ("
                                        + b.kind().name().toLowerCase() + ") saw token " + b.token() + " after #"
                                        + max.index() + " had seen token " + max.token()
                                        + ": the highest token decreased"),
                        b.invokeMs(),
                        List.of(max.index(), b.index()),
                        List.of()));
            }
        }
    }

    // ---- 3: the resource accepts writes in token order -----------------------------------------------------------

    private static void checkAcceptOrder(History h, List<Op> ops, List<Violation> out) {
        List<DbRecords.Accept> log = new ArrayList<>(h.accepts());
        log.sort(Comparator.comparingLong(DbRecords.Accept::value).thenComparingLong(DbRecords.Accept::id));
        DbRecords.Accept prev = null;
        DbRecords.Accept highest = null;
        for (DbRecords.Accept a : log) {
            if (prev != null && prev.value() == a.value() && prev.name().equals(a.name())) {
                out.add(new Violation(
                        3,
                        "two accepted writes produced counter value " + a.value() + " (lost update)",
                        a.atMicros() / 1000,
                        List.of(),
                        List.of(prev.render(), a.render())));
            }
            if (highest != null && a.token() < highest.token()) {
                out.add(new Violation(
                        3,
                        "resource accepted a write with token " + a.token() + " (holder " + a.holder()
                                + ", value " + a.value() + ") after a write with token " + highest.token() + " (holder "
                                + highest.holder() + ")",
                        a.atMicros() / 1000,
                        writesWithValue(ops, highest.value(), a.value()),
                        List.of(highest.render(), a.render())));
                break; // everything after the first inversion is noise
            }
            if (highest == null || a.token() > highest.token()) {
                highest = a;
            }
            prev = a;
        }
        if (!h.dbLoaded()) {
            // no accept log: fall back to the writers' own acknowledgements, ordered by the counter value
            List<Op> writes = new ArrayList<>();
            for (Op op : ops) {
                if (op.kind() == Op.Kind.WRITE && op.ok() && op.value() != null && op.token() != null) {
                    writes.add(op);
                }
            }
            writes.sort(Comparator.comparingLong(Op::value));
            Op top = null;
            for (Op w : writes) {
                if (top != null && w.token() < top.token()) {
                    out.add(new Violation(
                            3,
                            "write #" + w.index() + " with token " + w.token() + " accepted (value " + w.value()
                                    + ") after write #" + top.index() + " with token " + top.token(),
                            w.completeMs(),
                            List.of(top.index(), w.index()),
                            List.of()));
                    break;
                }
                if (top == null || w.token() > top.token()) {
                    top = w;
                }
            }
        }
    }

    private static List<Long> writesWithValue(List<Op> ops, long... values) {
        List<Long> idx = new ArrayList<>();
        for (Op op : ops) {
            if (op.kind() == Op.Kind.WRITE && op.value() != null) {
                for (long v : values) {
                    if (op.value() == v) {
                        idx.add(op.index());
                    }
                }
            }
        }
        return idx;
    }

    // ---- 4: acknowledged acquires and writes are durable --------------------------------------------------------

    private static void checkDurability(History h, List<Op> ops, List<Violation> out, Set<String> lostAcks) {
        List<Op> reads = new ArrayList<>();
        for (Op op : ops) {
            if (op.kind() == Op.Kind.READ && op.ok() && op.token() != null) {
                reads.add(op);
            }
        }
        reads.sort(Comparator.comparingLong(Op::invokeMs));
        // suffix minimum of read tokens
        int n = reads.size();
        long[] suffixMin = new long[n + 1];
        suffixMin[n] = Long.MAX_VALUE;
        for (int i = n - 1; i >= 0; i--) {
            suffixMin[i] = Math.min(suffixMin[i + 1], reads.get(i).token());
        }
        boolean reportedOne = false;
        for (Op a : ops) {
            if (a.kind() != Op.Kind.ACQUIRE || !a.ok() || a.token() == null) {
                continue;
            }
            int lo = 0;
            int hi = n;
            while (lo < hi) {
                int mid = (lo + hi) >>> 1;
                if (reads.get(mid).invokeMs() > a.completeMs()) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            if (suffixMin[lo] < a.token()) {
                Op lower = null;
                for (int i = lo; i < n; i++) {
                    if (reads.get(i).token() < a.token()) {
                        lower = reads.get(i);
                        break;
                    }
                }
                lostAcks.add(a.holder() + "/" + a.token());
                if (!reportedOne || lostAcks.size() <= 3) {
                    out.add(new Violation(
                            4,
                            "acquire #" + a.index() + " was acknowledged with token " + a.token()
                                    + " but read #" + lower.index() + " later found token " + lower.token()
                                    + ": an acknowledged grant was lost",
                            lower.invokeMs(),
                            List.of(a.index(), lower.index()),
                            List.of()));
                    reportedOne = true;
                }
            }
        }
        if (h.dbLoaded() && !h.leaseVersions().isEmpty()) {
            // every version of the row is in the final primary's audit (written in the grant's own transaction): an
            // acknowledged grant it lacks never reached that server, even when no read happened to see the older row.
            // Every acquire makes a new version with another holder or token, so each acknowledged acquire needs a
            // grant
            // of its own: a server that granted the same token to the same holder again after a promotion (tokens
            // without terms) has one grant where two acquires were acknowledged, and the earlier one is the lost one.
            Map<String, Integer> grants = new HashMap<>();
            String previous = null;
            for (DbRecords.LeaseVersion v : h.leaseVersions()) {
                String key = v.holder() + "/" + v.token();
                if (v.holder() != null && !key.equals(previous)) {
                    grants.merge(key, 1, Integer::sum);
                }
                previous = key;
            }
            Map<String, List<Op>> acknowledged = new HashMap<>();
            for (Op a : ops) {
                if (a.kind() == Op.Kind.ACQUIRE && a.ok() && a.token() != null) {
                    acknowledged
                            .computeIfAbsent(a.holder() + "/" + a.token(), k -> new ArrayList<>())
                            .add(a);
                }
            }
            for (Op a : ops) {
                if (a.kind() != Op.Kind.ACQUIRE || !a.ok() || a.token() == null) {
                    continue;
                }
                String key = a.holder() + "/" + a.token();
                List<Op> same = acknowledged.get(key);
                int unmatched = same.size() - grants.getOrDefault(key, 0);
                if (same.indexOf(a) < unmatched && lostAcks.add(key) && (!reportedOne || lostAcks.size() <= 3)) {
                    out.add(new Violation(
                            4,
                            "acquire #" + a.index() + " was acknowledged with token " + a.token()
                                    + " but the final primary's record of the lease row has "
                                    + (unmatched == same.size()
                                            ? "no grant"
                                            : (same.size() - unmatched) + " grant(s) for " + same.size()
                                                    + " acknowledged acquires")
                                    + " of it to " + a.holder() + ": an acknowledged grant was lost",
                            a.completeMs(),
                            List.of(a.index()),
                            List.of()));
                    reportedOne = true;
                }
            }
        }
        if (h.dbLoaded()) {
            Map<Long, DbRecords.Accept> byValue = new HashMap<>();
            for (DbRecords.Accept acc : h.accepts()) {
                byValue.putIfAbsent(acc.value(), acc);
            }
            int reported = 0;
            for (Op w : ops) {
                if (w.kind() == Op.Kind.WRITE && w.ok() && w.value() != null && w.token() != null) {
                    DbRecords.Accept acc = byValue.get(w.value());
                    if ((acc == null || acc.token() != w.token()) && reported++ < 3) {
                        out.add(new Violation(
                                4,
                                "write #" + w.index() + " was acknowledged (token " + w.token() + ", value "
                                        + w.value() + ") but the accept log "
                                        + (acc == null ? "has no such value" : "holds " + acc.render()),
                                w.completeMs(),
                                List.of(w.index()),
                                List.of()));
                    }
                }
            }
        }
    }

    // ---- 5: no write started after the local deadline -----------------------------------------------------------

    /**
     * A write's {@code deadlineMs} is the deadline the writer held for that token, from its own record of its last
     * successful acquire or renew (send time + renewDeadline), not derived from the write's start. A write refused
     * by the library's local validity check (rejected, LEASE_LOST) never reached the database and was not started.
     */
    private static void checkDeadlines(List<Op> ops, List<Violation> out) {
        int reported = 0;
        for (Op op : ops) {
            if (op.kind() == Op.Kind.WRITE
                    && op.deadlineMs() != null
                    && op.invokeMs() > op.deadlineMs()
                    && !refusedLocally(op)
                    && reported++ < 5) {
                out.add(new Violation(
                        5,
                        "write #" + op.index() + " by " + op.holder() + " (token " + op.token() + ", "
                                + op.outcome().name().toLowerCase() + ") started " + (op.invokeMs() - op.deadlineMs())
                                + " ms after its local deadline",
                        op.invokeMs(),
                        List.of(op.index()),
                        List.of()));
            }
        }
        checkWritesAfterTheirGrantEnded(ops, out);
    }

    /**
     * The other end of a grant a writer must respect: once its process reported the grant ended (revoked, or
     * released: a planned hand-over or a shutdown), it may start no write with it until it holds that grant again (an
     * acquire or renewal of the same token answered, or elected with it). A write the database refused still broke the rule (only the fence kept it
     * out); one the library refused locally (LEASE_LOST) was never started.
     */
    private static void checkWritesAfterTheirGrantEnded(List<Op> ops, List<Violation> out) {
        Map<String, TreeMap<Long, Op>> endsOf = new HashMap<>();
        Map<String, TreeMap<Long, Op>> claimsOf = new HashMap<>();
        for (Op op : ops) {
            if (op.holder() == null || op.token() == null) {
                continue;
            }
            String key = op.holder() + " " + op.token(); // one lease's history: the grant is holder and token
            switch (op.kind()) {
                case RELEASE, REVOKED ->
                    endsOf.computeIfAbsent(key, k -> new TreeMap<>()).putIfAbsent(op.completeMs(), op);
                case ELECTED ->
                    claimsOf.computeIfAbsent(key, k -> new TreeMap<>()).putIfAbsent(op.completeMs(), op);
                case ACQUIRE, RENEW -> {
                    // a renewal of the same grant answered after a step-down at the deadline: it leads again
                    if (op.ok()) {
                        claimsOf.computeIfAbsent(key, k -> new TreeMap<>()).putIfAbsent(op.completeMs(), op);
                    }
                }
                default -> {}
            }
        }
        int reported = 0;
        for (Op w : ops) {
            if (w.kind() != Op.Kind.WRITE || w.holder() == null || w.token() == null || refusedLocally(w)) {
                continue;
            }
            String key = w.holder() + " " + w.token();
            TreeMap<Long, Op> ends = endsOf.get(key);
            Map.Entry<Long, Op> end = ends == null ? null : ends.lowerEntry(w.invokeMs());
            if (end == null) {
                continue;
            }
            TreeMap<Long, Op> claims = claimsOf.get(key);
            Map.Entry<Long, Op> again = claims == null ? null : claims.ceilingEntry(end.getKey());
            if (again != null && again.getKey() <= w.invokeMs()) {
                continue;
            }
            if (reported++ < 5) {
                Op e = end.getValue();
                out.add(new Violation(
                        5,
                        "write #" + w.index() + " by " + w.holder() + " (token " + w.token() + ", "
                                + w.outcome().name().toLowerCase() + ") started " + (w.invokeMs() - e.completeMs())
                                + " ms after its node reported that grant "
                                + e.kind().name().toLowerCase() + " (#"
                                + e.index() + ")",
                        w.invokeMs(),
                        List.of(e.index(), w.index()),
                        List.of()));
            }
        }
    }

    private static boolean refusedLocally(Op op) {
        return op.outcome() == Op.Outcome.FAIL
                && op.detail() != null
                && op.detail().contains("LEASE_LOST");
    }

    // ---- 6: grant intervals on the database clock never overlap -------------------------------------------------

    private static void checkDbIntervals(History h, List<Op> ops, List<Violation> out) {
        // start of each grant: lease_events grant time, or acquired_at seen by reads
        TreeMap<Long, Long> start = new TreeMap<>();
        Map<Long, String> startWhy = new HashMap<>();
        Map<Long, Long> end = new HashMap<>();
        Map<Long, String> endWhy = new HashMap<>();
        for (DbRecords.LeaseEvent e : h.leaseEvents()) {
            if (e.isGrant()) {
                if (!start.containsKey(e.token()) || e.atMicros() < start.get(e.token())) {
                    start.put(e.token(), e.atMicros());
                    startWhy.put(e.token(), e.render());
                }
            } else {
                end.merge(e.token(), e.atMicros(), Math::min);
                endWhy.put(e.token(), e.render());
            }
        }
        Map<Long, Long> readEnd = new HashMap<>();
        Map<Long, Op> readEndOp = new HashMap<>();
        for (Op r : ops) {
            // a read's timestamps were written at an unknown step of a stepped clock; the audit rows carry the same
            if (r.kind() != Op.Kind.READ
                    || !r.ok()
                    || r.token() == null
                    || !h.clockSteps().isEmpty()) {
                continue;
            }
            if (r.dbFrom() != null
                    && r.holder() != null
                    && (!start.containsKey(r.token()) || r.dbFrom() < start.get(r.token()))) {
                start.put(r.token(), r.dbFrom());
                startWhy.put(r.token(), "read #" + r.index() + " acquired_at");
            }
            if (r.dbTo() != null && r.holder() != null && r.dbTo() > readEnd.getOrDefault(r.token(), Long.MIN_VALUE)) {
                readEnd.put(r.token(), r.dbTo());
                readEndOp.put(r.token(), r);
            }
        }
        // every version of the row the database wrote: the first grant time, and the last expiry each token was given
        // (a release writes expires_at = now). This closes grants that were never released nor seen by the monitor.
        Map<Long, DbRecords.LeaseVersion> lastVersion = new HashMap<>();
        for (DbRecords.LeaseVersion v : h.leaseVersions()) {
            if (v.holder() != null && (!start.containsKey(v.token()) || v.atMicros() < start.get(v.token()))) {
                start.put(v.token(), v.atMicros());
                startWhy.put(v.token(), v.render());
            }
            DbRecords.LeaseVersion prev = lastVersion.get(v.token());
            if (prev == null || v.id() > prev.id()) {
                lastVersion.put(v.token(), v);
            }
        }
        for (Map.Entry<Long, DbRecords.LeaseVersion> e : lastVersion.entrySet()) {
            long t = e.getKey();
            long expiry = e.getValue().expiresMicros();
            if (!end.containsKey(t) || expiry < end.get(t)) {
                end.put(t, expiry);
                endWhy.put(
                        t, "last expiry the database gave it, " + e.getValue().render());
            }
        }
        for (Map.Entry<Long, Long> e : readEnd.entrySet()) {
            if (!end.containsKey(e.getKey())) {
                end.put(e.getKey(), e.getValue());
                endWhy.put(
                        e.getKey(),
                        "expires_at seen by read #" + readEndOp.get(e.getKey()).index());
            }
        }
        // a holder that takes its own lease again in a newer term (after a failover its old-term grant can not be
        // renewed) ends its old grant there: the row moved to the new token, and nothing can use the old one after
        Map<Long, String> holderOf = new HashMap<>();
        h.leaseEvents().stream()
                .filter(DbRecords.LeaseEvent::isGrant)
                .forEach(g -> holderOf.put(g.token(), g.holder()));
        h.leaseVersions().stream()
                .filter(v -> v.holder() != null)
                .forEach(v -> holderOf.putIfAbsent(v.token(), v.holder()));
        for (Map.Entry<Long, Long> e : start.entrySet()) {
            Map.Entry<Long, Long> next = start.higherEntry(e.getKey());
            String holder = holderOf.get(e.getKey());
            if (next != null
                    && (next.getKey() >> 32) > (e.getKey() >> 32)
                    && holder != null
                    && holder.equals(holderOf.get(next.getKey()))
                    && end.getOrDefault(e.getKey(), Long.MAX_VALUE) > next.getValue()) {
                end.put(e.getKey(), next.getValue());
                endWhy.put(e.getKey(), "the same holder's grant in a newer term, " + startWhy.get(next.getKey()));
            }
        }
        long maxEnd = Long.MIN_VALUE;
        Long maxEndToken = null;
        for (Map.Entry<Long, Long> e : start.entrySet()) {
            long t = e.getKey();
            if (maxEndToken != null && e.getValue() < maxEnd) {
                out.add(new Violation(
                        6,
                        "grant of token " + t + " at " + DbTime.format(e.getValue()) + " overlaps the grant of token "
                                + maxEndToken + " which lasted until " + DbTime.format(maxEnd),
                        e.getValue() / 1000,
                        List.of(),
                        List.of(startWhy.get(t), startWhy.get(maxEndToken) + " .. " + endWhy.get(maxEndToken))));
                break;
            }
            Long en = end.get(t);
            if (en != null && en > maxEnd) {
                maxEnd = en;
                maxEndToken = t;
            }
        }
        // fenced writes commit inside their grant: commit time < start of the next grant
        List<DbRecords.Accept> log = new ArrayList<>(h.accepts());
        log.sort(Comparator.comparingLong(DbRecords.Accept::committedMicros));
        for (DbRecords.Accept a : log) {
            Map.Entry<Long, Long> next = start.higherEntry(a.token());
            Long own = start.get(a.token());
            if (next != null && a.committedMicros() >= next.getValue()) {
                out.add(new Violation(
                        6,
                        "write with token " + a.token()
                                + (a.commitMicros() != null ? " committed at " : " inserted at ")
                                + DbTime.format(a.committedMicros()) + ", after token " + next.getKey()
                                + " was granted at " + DbTime.format(next.getValue()),
                        a.committedMicros() / 1000,
                        List.of(),
                        List.of(a.render(), String.valueOf(startWhy.get(next.getKey())))));
                break;
            }
            if (own != null && a.atMicros() < own) {
                out.add(new Violation(
                        6,
                        "write with token " + a.token() + " accepted at " + DbTime.format(a.atMicros())
                                + ", before that token was granted at " + DbTime.format(own),
                        a.atMicros() / 1000,
                        List.of(),
                        List.of(a.render(), String.valueOf(startWhy.get(a.token())))));
                break;
            }
        }
    }

    // ---- 7: liveness ---------------------------------------------------------------------------------------------

    /**
     * For every fault that took a leader away while another node was up: the time from the fault to the first
     * acknowledged grant to a different holder (a paused leader that wakes and re-acquires is not a failover). The
     * bound is leaseDuration + retryPeriod + {@value #LIVENESS_SLACK_MS} ms plus the scheduling lag measured on the
     * test machine during that window, capped at {@value #LAG_CAP_MS} ms. A window into which another fault was
     * injected, or that was still open when the run ended, is not measured, and says why.
     */
    private void checkLiveness(
            History h,
            List<Op> ops,
            List<Violation> out,
            Map<FaultKind, List<Long>> failovers,
            List<CheckReport.Window> windows) {
        List<Op> grants = new ArrayList<>();
        long lastTime = h.t0();
        for (Op op : ops) {
            lastTime = Math.max(lastTime, op.completeMs());
            if ((op.kind() == Op.Kind.ACQUIRE || op.kind() == Op.Kind.ELECTED) && op.ok() && op.holder() != null) {
                grants.add(op);
            }
        }
        grants.sort(Comparator.comparingLong(Op::completeMs));
        List<FaultRecord> faults = h.faults();
        for (FaultRecord f : faults) {
            if (!f.kind().livenessBounded() || f.leaderHolder() == null) {
                continue;
            }
            if (!f.leaderLoss()) {
                // the leader was hit, but no other candidate with a true-rate clock was up and campaigning: no failover
                // can be expected within the bound
                windows.add(new CheckReport.Window(
                        f,
                        null,
                        -1,
                        config.livenessBoundMs(),
                        "no other candidate with a true-rate clock was up and campaigning",
                        0));
                continue;
            }
            // the window opens at the fault, or later if the database renewed the leader's grant (or granted the same
            // holder the lease again) after the fault was
            // recorded (the fault took effect late: spawning nft under load, a statement already on the wire): at the
            // last renewal of that grant on the database clock, which is the machine's clock (same host)
            long from = f.startMs();
            String opened = "fault";
            for (DbRecords.LeaseVersion v : h.leaseVersions()) {
                long atMs = v.atMicros() / 1000;
                if (atMs <= f.startMs()) {
                    continue;
                }
                if (atMs >= f.startMs() + config.maxLivenessBoundMs()
                        || (v.holder() != null && !v.holder().equals(f.leaderHolder()))) {
                    break; // once another holder had the lease, the fault had taken effect: a later grant is a new one
                }
                // the same holder, with this grant or one it took again before the fault reached it (a new token)
                if (f.leaderToken() != null
                        && v.token() >= f.leaderToken()
                        && f.leaderHolder().equals(v.holder())) {
                    from = atMs;
                    opened = "last renewal on the database, " + (atMs - f.startMs()) + " ms after the fault";
                }
            }
            Op first = null;
            for (Op g : grants) {
                if (g.completeMs() >= from
                        && !g.holder().equals(f.leaderHolder())
                        && (f.leaderToken() == null || g.token() == null || g.token() > f.leaderToken())) {
                    first = g;
                    break;
                }
            }
            long maxEnd = from + config.maxLivenessBoundMs();
            long windowEnd = first == null ? maxEnd : Math.min(first.completeMs(), maxEnd);
            long rawLag = h.maxLag(from, windowEnd);
            long lag = Math.max(0, Math.min(LAG_CAP_MS, rawLag));
            long bound = config.livenessBoundMs() + lag;
            String reason = otherFault(faults, f, windowEnd);
            if (reason == null) {
                reason = clockRanAhead(h, f, config.leaseDurationMs());
            }
            if (reason == null && first == null && lastTime < from + bound) {
                reason = "the run ended " + (lastTime - from) + " ms after the window opened";
            }
            Long ms = first == null ? null : first.completeMs() - from;
            windows.add(new CheckReport.Window(f, ms, rawLag, bound, reason, from - f.startMs()));
            if (reason != null) {
                continue;
            }
            if (ms != null) {
                failovers.computeIfAbsent(f.kind(), k -> new ArrayList<>()).add(ms);
            }
            if (ms != null && ms > bound) {
                out.add(new Violation(
                        7,
                        "after fault#" + f.index() + " (" + f.kind().label() + ") the first grant to "
                                + "another holder, #" + first.index() + " (" + first.holder() + "), came " + ms
                                + " ms after the "
                                + opened + " > bound "
                                + bound + " ms (measured scheduling lag " + rawLag + " ms)",
                        first.completeMs(),
                        List.of(first.index()),
                        List.of(f.render(h.t0()))));
            } else if (ms == null) {
                out.add(new Violation(
                        7,
                        "after fault#" + f.index() + " (" + f.kind().label() + ") no grant to another "
                                + "holder within " + bound + " ms of the " + opened + " (measured scheduling lag "
                                + rawLag + " ms)",
                        from + bound,
                        List.of(),
                        List.of(f.render(h.t0()))));
            }
        }
    }

    /**
     * A grant renewed while the database clock ran ahead carries an expiry that lies that much later in real time,
     * and the database rightly waits for it: a window opening before such an expiry could have passed is not held to
     * the bound.
     */
    /**
     * Why the window of {@code f}, up to {@code windowEnd}, can not be measured because of another fault: one injected
     * inside it, or an earlier one still active; null if neither.
     */
    static String otherFault(List<FaultRecord> faults, FaultRecord f, long windowEnd) {
        for (FaultRecord g : faults) {
            if (g == f) {
                continue;
            }
            long gEnd = g.endMs() < 0 ? Long.MAX_VALUE : g.endMs();
            if (g.startMs() > f.startMs() && g.startMs() <= windowEnd) {
                return "fault#" + g.index() + " (" + g.kind().label() + ") injected " + (g.startMs() - f.startMs())
                        + " ms into the window";
            }
            if (g.startMs() <= f.startMs() && gEnd > f.startMs() && g.index() < f.index()) {
                return "fault#" + g.index() + " (" + g.kind().label() + ") still active";
            }
        }
        return null;
    }

    static String clockRanAhead(History h, FaultRecord f, long leaseDurationMs) {
        long offsetMicros = 0;
        for (DbClock.Step s : h.clockSteps()) {
            long before = offsetMicros;
            offsetMicros += s.deltaMicros();
            if (before > 0 && offsetMicros < before && s.atMs() <= f.startMs()) {
                long aheadMs = before / 1000;
                if (f.startMs() - s.atMs() < aheadMs + leaseDurationMs) {
                    return "the database clock ran " + aheadMs + " ms ahead until " + (f.startMs() - s.atMs())
                            + " ms before the fault: a grant renewed then stays valid that much longer in real time";
                }
            }
        }
        return null;
    }

    /** Orders the per-kind lists for reporting. */
    static Map<FaultKind, List<Long>> sorted(Map<FaultKind, List<Long>> m) {
        Map<FaultKind, List<Long>> r = new LinkedHashMap<>();
        m.forEach((k, v) -> {
            List<Long> c = new ArrayList<>(v);
            c.sort(null);
            r.put(k, c);
        });
        return r;
    }
}
