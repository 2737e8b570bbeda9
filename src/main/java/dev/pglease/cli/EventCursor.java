package dev.pglease.cli;

import dev.pglease.internal.sql.OperatorStatements.LeaseEvent;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Where a follower of {@code lease_events} stands: which events it has shown, so that each is shown once and none
 * is skipped. Event ids grow, but a transaction may commit after another that took a higher id: an id missing below
 * the highest one shown is waited for (read again from below it) for {@link #GAP_WAIT_NANOS}, after which it is
 * taken for an id that no event will ever have (a rolled-back transaction used it).
 */
final class EventCursor {

    /** How long an id missing below a shown one is waited for. */
    static final long GAP_WAIT_NANOS = 30_000_000_000L;
    /** Missing ids tracked at most; beyond that (an id sequence moved by hand) they are given up. */
    static final int MAX_GAPS = 1_000;

    private long floor;
    private final TreeSet<Long> shown = new TreeSet<>();
    private final Map<Long, Long> gaps = new HashMap<>();

    /** Starts after event {@code lastId}: what came before is not shown. */
    EventCursor(long lastId) {
        this.floor = lastId;
    }

    /** Every id up to this one is shown or given up: read the events above it. */
    long after() {
        return floor;
    }

    /** The events of {@code read} not shown before, by id; they count as shown from now on. */
    List<LeaseEvent> accept(List<LeaseEvent> read, long nowNanos) {
        List<LeaseEvent> fresh = new ArrayList<>();
        for (LeaseEvent e : read) {
            if (e.id() > floor && shown.add(e.id())) {
                gaps.remove(e.id());
                fresh.add(e);
            }
        }
        if (!shown.isEmpty()) {
            long highest = shown.last();
            if (highest - floor - shown.size() > MAX_GAPS) {
                gaps.clear();
                shown.clear();
                floor = highest;
                return fresh;
            }
            for (long id = floor + 1; id < highest; id++) {
                if (!shown.contains(id)) {
                    gaps.putIfAbsent(id, nowNanos);
                }
            }
        }
        while (true) {
            long next = floor + 1;
            Long missingSince = gaps.get(next);
            if (shown.remove(next)) {
                floor = next;
            } else if (missingSince != null && nowNanos - missingSince >= GAP_WAIT_NANOS) {
                gaps.remove(next);
                floor = next;
            } else {
                return fresh;
            }
        }
    }
}
