package dev.pglease.internal.group;

import dev.pglease.internal.sql.GroupStatements;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * How long each shard granted to one member had no owner before the grant ({@link GroupEvents#unowned}), when the
 * observer asks for it. Grants are heard of on the engine's callback threads and kept under the member's lock; they
 * are measured on the member's thread, in one statement for every grant since the last time. The expiry of each
 * shard's grant, as the member's last read of the group showed it, is kept without a lock.
 */
final class UnownedTime {

    private final MemberEngine.Settings s;
    private final MemberConnections connections;
    private final GroupStatements sql;
    private final GroupEvents events;
    private final MemberSchedule schedule;
    /** The expiry (ticker) of each shard's grant as the last read showed it: what a crashed holder's grant ends at. */
    private final Map<Integer, Long> knownExpiry = new ConcurrentHashMap<>();
    /** The token of the last grant of each shard this member heard of: a grant led again is not measured again. */
    private final Map<Integer, Long> lastGranted = new ConcurrentHashMap<>();
    /** Grants of this member whose time without an owner before them is still to be read. Guarded by the lock. */
    private final List<Granted> toMeasure = new ArrayList<>();

    /** A grant of a shard to this member, when this member heard of it (ticker). */
    private record Granted(int shard, long token, long at) {}

    UnownedTime(
            MemberEngine.Settings settings,
            MemberConnections connections,
            GroupStatements sql,
            GroupEvents events,
            MemberSchedule schedule) {
        this.s = settings;
        this.connections = connections;
        this.sql = sql;
        this.events = events;
        this.schedule = schedule;
    }

    /** On a callback thread: {@code shard} was granted to this member, heard of {@code at} (ticker). */
    void granted(int shard, long token, long at) {
        if (Long.valueOf(token).equals(lastGranted.put(shard, token))) {
            return; // the same grant, led again after a step-down: its time without an owner was told already
        }
        if (events.measuresUnowned()) {
            synchronized (schedule.lock()) {
                toMeasure.add(new Granted(shard, token, at));
                schedule.wake();
            }
        }
    }

    /** A read of the group showed the grant of {@code shard} ending at {@code at} (ticker). */
    void expires(int shard, long at) {
        knownExpiry.put(shard, at);
    }

    /** Whether no grant waits to be measured. */
    boolean nothingToMeasure() {
        synchronized (schedule.lock()) {
            return toMeasure.isEmpty();
        }
    }

    /**
     * On the member's thread, in one statement for every grant since the last time: how long each shard this member
     * was granted had no owner before. From the history when the previous grant was given back; from the expiry the
     * last read showed when it expired (a crashed or paused holder: its row and its shards were renewed together, so
     * the read that found it gone came right after the expiry it had shown).
     */
    void measure() throws SQLException {
        List<Granted> grants;
        synchronized (schedule.lock()) {
            if (toMeasure.isEmpty()) {
                return;
            }
            grants = new ArrayList<>(toMeasure);
            toMeasure.clear();
        }
        List<String> names = new ArrayList<>(grants.size());
        List<Long> tokens = new ArrayList<>(grants.size());
        Map<String, Granted> byLease = new HashMap<>();
        for (Granted g : grants) {
            String lease = GroupStatements.shardLease(s.group(), g.shard());
            names.add(lease);
            tokens.add(g.token());
            byLease.put(lease, g);
        }
        List<GroupStatements.Before> found;
        try (Connection c = connections.open()) {
            found = sql.before(c, names, tokens);
        }
        for (GroupStatements.Before b : found) {
            Granted g = byLease.get(b.lease());
            if (g == null || g.token() != b.token() || b.previousKind() == null) {
                continue;
            }
            long nanos;
            if (b.released()) {
                nanos = (long) (b.millisSincePrevious() * 1_000_000d);
            } else if (s.holder().equals(b.previousHolder())) {
                continue; // this member's own grant expired and it took the shard again
            } else {
                Long expiry = knownExpiry.get(g.shard());
                if (expiry == null) {
                    continue;
                }
                nanos = g.at() - expiry; // below 0 only by the read's rounding: it expired before this grant
            }
            events.unowned(s.group(), g.shard(), g.token(), Duration.ofNanos(Math.max(0, nanos)));
        }
    }
}
