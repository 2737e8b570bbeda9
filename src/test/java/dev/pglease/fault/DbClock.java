package dev.pglease.fault;

import java.util.ArrayList;
import java.util.List;

/**
 * The database server's clock when the kit stepped it (libfaketime on the server): which step every database
 * record came after, and two readings of its timestamps.
 *
 * <p>The kit steps the clock while it holds an exclusive lock on every table the records come from, and notes the
 * highest id of each table at that moment ({@link Step}). A record with a higher id was written, and committed, after
 * the step; so its timestamp carries the offset of that step.
 *
 * <ul>
 *   <li>{@link #monotonic}: the database clock with its backward steps undone and its forward steps kept. This is the
 *       clock the database arbitrated leases on (a forward step really made every grant end early, on that clock),
 *       and it never runs backwards, so invariant 6 compares grant intervals and commit times on it.</li>
 *   <li>{@link #machine}: the machine's clock (both kinds of steps undone), for comparisons with what nodes and the
 *       kit recorded (invariants 1 and 7).</li>
 * </ul>
 * Without steps both readings are the recorded timestamps.
 */
final class DbClock {

    /**
     * One step of the database clock.
     *
     * @param atMs           when the kit stepped it (kit clock)
     * @param deltaMicros    how far the clock moved (negative: backwards)
     * @param lastEventId    highest {@code lease_events} id before the step
     * @param lastAcceptId   highest {@code fenced_counter_log} id before the step
     * @param lastVersionId  highest {@code kit_lease_audit} id before the step
     */
    record Step(long atMs, long deltaMicros, long lastEventId, long lastAcceptId, long lastVersionId) {}

    private final List<Step> steps;

    DbClock(List<Step> steps) {
        for (int i = 1; i < steps.size(); i++) {
            Step a = steps.get(i - 1);
            Step b = steps.get(i);
            if (b.lastEventId() < a.lastEventId()
                    || b.lastAcceptId() < a.lastAcceptId()
                    || b.lastVersionId() < a.lastVersionId()) {
                throw new IllegalArgumentException("clock steps out of order: " + a + " then " + b);
            }
        }
        this.steps = List.copyOf(steps);
    }

    boolean stepped() {
        return !steps.isEmpty();
    }

    /** Number of steps before a record: how many steps have a marker below its id. */
    private int epoch(long id, java.util.function.ToLongFunction<Step> marker) {
        int n = 0;
        for (Step s : steps) {
            if (id > marker.applyAsLong(s)) {
                n++;
            }
        }
        return n;
    }

    private long offset(int epoch) {
        long o = 0;
        for (int i = 0; i < epoch; i++) {
            o += steps.get(i).deltaMicros();
        }
        return o;
    }

    private long undoneBackwards(int epoch) {
        long o = 0;
        for (int i = 0; i < epoch; i++) {
            o += Math.max(0, -steps.get(i).deltaMicros());
        }
        return o;
    }

    private long read(long micros, int epoch, boolean monotonic) {
        if (micros == Long.MIN_VALUE) {
            return micros;
        }
        return monotonic ? micros + undoneBackwards(epoch) : micros - offset(epoch);
    }

    /** The history's database records on the monotonic database clock. */
    History monotonic(History h) {
        return mapped(h, true);
    }

    /** The history's database records on the machine's clock. */
    History machine(History h) {
        return mapped(h, false);
    }

    private History mapped(History h, boolean monotonic) {
        if (!stepped()) {
            return h;
        }
        List<DbRecords.LeaseEvent> events = new ArrayList<>();
        for (DbRecords.LeaseEvent e : h.leaseEvents()) {
            int ep = epoch(e.id(), Step::lastEventId);
            events.add(new DbRecords.LeaseEvent(
                    e.id(),
                    e.lease(),
                    e.token(),
                    e.holder(),
                    e.previousHolder(),
                    e.kind(),
                    read(e.atMicros(), ep, monotonic)));
        }
        List<DbRecords.Accept> accepts = new ArrayList<>();
        for (DbRecords.Accept a : h.accepts()) {
            int ep = epoch(a.id(), Step::lastAcceptId);
            accepts.add(new DbRecords.Accept(
                    a.id(),
                    a.name(),
                    a.token(),
                    a.holder(),
                    a.value(),
                    read(a.atMicros(), ep, monotonic),
                    a.commitMicros() == null ? null : read(a.commitMicros(), ep, monotonic)));
        }
        List<DbRecords.LeaseVersion> versions = new ArrayList<>();
        for (DbRecords.LeaseVersion v : h.leaseVersions()) {
            int ep = epoch(v.id(), Step::lastVersionId);
            versions.add(new DbRecords.LeaseVersion(
                    v.id(),
                    v.token(),
                    v.holder(),
                    read(v.expiresMicros(), ep, monotonic),
                    read(v.atMicros(), ep, monotonic),
                    v.name()));
        }
        return h.withDatabaseRecords(events, accepts, versions);
    }
}
