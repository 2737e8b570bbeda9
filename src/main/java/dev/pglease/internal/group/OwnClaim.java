package dev.pglease.internal.group;

import java.util.List;
import java.util.Map;

/**
 * This member's claim to shards as the other members see it ({@link Claims} is how they judge it): it lost its claim
 * when a free shard the assignment gave it stayed untaken for a lease duration, and it keeps having none until it
 * holds a shard or joins afresh. A member that holds no shard while shards the assignment gives it are held by others
 * that do not hand them over is told to join afresh: once right after it lost its claim by that rule, otherwise after
 * {@link #PATIENCE} lease durations (a rule that the others applied on a read this member did not make). A shard
 * being handed over stays held, so a long drain never counts against the claim. Not thread-safe: the member's thread
 * only.
 */
final class OwnClaim {

    /** Lease durations a member waits, holding nothing, for shards the others keep, before it joins afresh anyway. */
    static final int PATIENCE = 5;

    private static final long NONE = Long.MIN_VALUE;

    private final String self;
    private final long leaseDurationNanos;
    private long waitedOnSince = NONE;
    private long keptFromSince = NONE;
    private boolean lost;

    OwnClaim(String self, long leaseDurationNanos) {
        this.self = self;
        this.leaseDurationNanos = leaseDurationNanos;
    }

    /**
     * Whether this member should join afresh, given the assignment {@code full} computed with every live member and
     * the current {@code holders} and {@code pins}, read at {@code now} (ticker).
     */
    boolean joinAfresh(Assignment full, Map<Integer, Assignment.Holding> holders, List<Assignment.Pin> pins, long now) {
        boolean holdsOne = false;
        for (Assignment.Holding h : holders.values()) {
            holdsOne |= h.holder().equals(self);
        }
        boolean waitedOn = false;
        boolean keptFrom = false;
        for (int shard : full.shardsOf(self)) {
            Assignment.Holding h = holders.get(shard);
            if (h == null) {
                waitedOn |= pins.stream().noneMatch(p -> p.shard() == shard);
            } else if (!h.holder().equals(self)) {
                keptFrom = true;
            }
        }
        if (holdsOne) {
            reset();
            return false;
        }
        if (!waitedOn) {
            waitedOnSince = NONE;
        } else if (waitedOnSince == NONE) {
            waitedOnSince = now;
        } else if (now - waitedOnSince >= leaseDurationNanos) {
            lost = true;
        }
        if (!keptFrom) {
            keptFromSince = NONE;
            return false;
        }
        if (keptFromSince == NONE) {
            keptFromSince = now;
        }
        if (lost || now - keptFromSince >= PATIENCE * leaseDurationNanos) {
            reset();
            return true;
        }
        return false;
    }

    /** When a decision is next due (ticker), or {@code none}. */
    long nextDecision(long none) {
        long next = none;
        if (waitedOnSince != NONE && waitedOnSince + leaseDurationNanos - next < 0) {
            next = waitedOnSince + leaseDurationNanos;
        }
        if (keptFromSince != NONE && keptFromSince + PATIENCE * leaseDurationNanos - next < 0) {
            next = keptFromSince + PATIENCE * leaseDurationNanos;
        }
        return next;
    }

    /** After joining afresh or taking a shard: the others count this member again. */
    void reset() {
        waitedOnSince = NONE;
        keptFromSince = NONE;
        lost = false;
    }
}
