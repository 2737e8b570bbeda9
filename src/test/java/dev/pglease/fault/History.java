package dev.pglease.fault;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

/**
 * A recorded history: the operations nodes reported, the kit's monitor reads, the injected faults, and what the
 * database says afterwards (lease events and the resource's accept log). Thread-safe for recording.
 */
public final class History {
    private final List<Op> ops = new ArrayList<>();
    private final List<FaultRecord> faults = new ArrayList<>();
    private final List<DbRecords.LeaseEvent> leaseEvents = new ArrayList<>();
    private final List<DbRecords.Accept> accepts = new ArrayList<>();
    private final List<DbRecords.LeaseVersion> versions = new ArrayList<>();
    private final List<long[]> lagSamples = new ArrayList<>();
    private final List<DbClock.Step> clockSteps = new ArrayList<>();
    private final List<GroupRecords.Snapshot> snapshots = new ArrayList<>();
    private final List<GroupRecords.Settle> settles = new ArrayList<>();
    private final long t0;
    private boolean dbLoaded;

    public History() {
        this(System.currentTimeMillis());
    }

    public History(long t0) {
        this.t0 = t0;
    }

    public long t0() {
        return t0;
    }

    /** Appends an operation, assigning its index. */
    public synchronized Op add(Op op) {
        Op indexed = op.withIndex(ops.size());
        ops.add(indexed);
        return indexed;
    }

    public synchronized FaultRecord addFault(FaultRecord fault) {
        FaultRecord f = new FaultRecord(
                faults.size(),
                fault.kind(),
                fault.target(),
                fault.startMs(),
                fault.endMs(),
                fault.leaderLoss(),
                fault.leaderHolder(),
                fault.leaderToken());
        faults.add(f);
        return f;
    }

    public synchronized void healFault(FaultRecord fault, long endMs) {
        faults.set((int) fault.index(), faults.get((int) fault.index()).healedAt(endMs));
    }

    public synchronized void setLeaseEvents(List<DbRecords.LeaseEvent> events) {
        leaseEvents.clear();
        leaseEvents.addAll(events);
    }

    public synchronized void addLeaseEvents(List<DbRecords.LeaseEvent> events) {
        leaseEvents.addAll(events);
    }

    public synchronized void setAccepts(List<DbRecords.Accept> log) {
        accepts.clear();
        accepts.addAll(log);
        dbLoaded = true;
    }

    /** Whether the accept log was read back from the database (so a missing acknowledged write is a loss). */
    public synchronized boolean dbLoaded() {
        return dbLoaded;
    }

    public synchronized void setLeaseVersions(List<DbRecords.LeaseVersion> rows) {
        versions.clear();
        versions.addAll(rows);
    }

    /** Every version of the lease row the database wrote (empty when the audit trigger was not installed). */
    public synchronized List<DbRecords.LeaseVersion> leaseVersions() {
        return Collections.unmodifiableList(new ArrayList<>(versions));
    }

    /**
     * Records the scheduling lag of the test machine: at {@code atMs} (kit clock), a thread that asked to wake up
     * woke {@code lateMs} late.
     */
    public synchronized void addLag(long atMs, long lateMs) {
        lagSamples.add(new long[] {atMs, lateMs});
    }

    /** The largest scheduling lag sampled in [fromMs, toMs], or -1 if there was no sample. */
    public synchronized long maxLag(long fromMs, long toMs) {
        long max = -1;
        for (long[] s : lagSamples) {
            if (s[0] >= fromMs && s[0] <= toMs + 50) {
                max = Math.max(max, s[1]);
            }
        }
        return max;
    }

    /** Largest scheduling lag of the whole run, -1 without samples. */
    public synchronized long maxLag() {
        return maxLag(Long.MIN_VALUE / 2, Long.MAX_VALUE / 2);
    }

    public synchronized int lagSampleCount() {
        return lagSamples.size();
    }

    /** Records a step of the database server's clock (see {@link DbClock}). */
    public synchronized void addClockStep(
            long atMs, long deltaMicros, long lastEventId, long lastAcceptId, long lastVersionId) {
        clockSteps.add(new DbClock.Step(atMs, deltaMicros, lastEventId, lastAcceptId, lastVersionId));
    }

    /** The steps of the database server's clock, in order (empty when it was never stepped). */
    public synchronized List<DbClock.Step> clockSteps() {
        return List.copyOf(clockSteps);
    }

    /** Records the group as the monitor read it (the monitor records only reads that differ from the last one). */
    public synchronized void addSnapshot(GroupRecords.Snapshot s) {
        snapshots.add(s);
    }

    /** The group's states as read, in order (empty in a run with one lease). */
    public synchronized List<GroupRecords.Snapshot> snapshots() {
        return List.copyOf(snapshots);
    }

    /** Records the end of the kit's wait for the group to settle. */
    public synchronized void addSettle(GroupRecords.Settle s) {
        settles.add(s);
    }

    public synchronized List<GroupRecords.Settle> settles() {
        return List.copyOf(settles);
    }

    /** The leases the operations and database records are about (empty when the run has one lease). */
    public synchronized java.util.SortedSet<String> leases() {
        java.util.SortedSet<String> names = new java.util.TreeSet<>();
        for (Op op : ops) {
            if (op.lease() != null) {
                names.add(op.lease());
            }
        }
        for (DbRecords.LeaseEvent e : leaseEvents) {
            names.add(e.lease());
        }
        for (DbRecords.LeaseVersion v : versions) {
            if (v.name() != null) {
                names.add(v.name());
            }
        }
        return names;
    }

    /**
     * Splits this history by lease (a group run: one lease per shard): for each lease, the operations about it
     * (keeping their indices, so that a violation names them in the whole history), its events, the accept log of
     * its resource and its row's versions, with every fault, lag sample and clock step.
     */
    synchronized Map<String, History> byLease() {
        Map<String, History> out = new java.util.TreeMap<>();
        java.util.function.Function<String, History> sub = name -> {
            History h = new History(t0);
            h.faults.addAll(faults);
            h.lagSamples.addAll(lagSamples);
            h.clockSteps.addAll(clockSteps);
            h.dbLoaded = dbLoaded;
            return h;
        };
        for (Op op : ops) {
            if (op.lease() != null) {
                out.computeIfAbsent(op.lease(), sub).ops.add(op);
            }
        }
        for (DbRecords.LeaseEvent e : leaseEvents) {
            out.computeIfAbsent(e.lease(), sub).leaseEvents.add(e);
        }
        for (DbRecords.Accept a : accepts) {
            out.computeIfAbsent(a.name(), sub).accepts.add(a);
        }
        for (DbRecords.LeaseVersion v : versions) {
            if (v.name() != null) {
                out.computeIfAbsent(v.name(), sub).versions.add(v);
            }
        }
        return out;
    }

    /**
     * A copy of this history with other database records (the same records on another reading of the database
     * clock, see {@link DbClock}).
     */
    synchronized History withDatabaseRecords(
            List<DbRecords.LeaseEvent> events, List<DbRecords.Accept> log, List<DbRecords.LeaseVersion> rows) {
        History h = new History(t0);
        h.ops.addAll(ops);
        h.faults.addAll(faults);
        h.lagSamples.addAll(lagSamples);
        h.clockSteps.addAll(clockSteps);
        h.leaseEvents.addAll(events);
        h.accepts.addAll(log);
        h.versions.addAll(rows);
        h.snapshots.addAll(snapshots);
        h.settles.addAll(settles);
        h.dbLoaded = dbLoaded;
        return h;
    }

    public synchronized List<Op> ops() {
        return Collections.unmodifiableList(new ArrayList<>(ops));
    }

    public synchronized List<FaultRecord> faults() {
        return Collections.unmodifiableList(new ArrayList<>(faults));
    }

    public synchronized List<DbRecords.LeaseEvent> leaseEvents() {
        return Collections.unmodifiableList(new ArrayList<>(leaseEvents));
    }

    public synchronized List<DbRecords.Accept> accepts() {
        return Collections.unmodifiableList(new ArrayList<>(accepts));
    }

    // ---- convenience builders for hand-made histories ----

    public Op acquire(
            String node, String holder, Op.Outcome outcome, Long token, long invoke, long complete, long deadline) {
        return add(new Op(
                0, node, holder, Op.Kind.ACQUIRE, outcome, token, invoke, complete, deadline, null, null, null, null));
    }

    public Op renew(
            String node, String holder, Op.Outcome outcome, long token, long invoke, long complete, long deadline) {
        return add(new Op(
                0, node, holder, Op.Kind.RENEW, outcome, token, invoke, complete, deadline, null, null, null, null));
    }

    public Op write(
            String node,
            String holder,
            Op.Outcome outcome,
            long token,
            long start,
            long complete,
            long deadline,
            Long value) {
        return add(new Op(
                0, node, holder, Op.Kind.WRITE, outcome, token, start, complete, deadline, value, null, null, null));
    }

    public Op read(String holder, long token, long invoke, long complete, Long dbFrom, Long dbTo) {
        return add(new Op(
                0,
                "monitor",
                holder,
                Op.Kind.READ,
                Op.Outcome.OK,
                token,
                invoke,
                complete,
                null,
                null,
                dbFrom,
                dbTo,
                null));
    }
}
