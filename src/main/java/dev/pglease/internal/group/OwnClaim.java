package dev.pglease.internal.group;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * This member's claim to shards as the other members judge it ({@link Claims}): it loses its claim when a free shard
 * the assignment gives it stays untaken for a lease duration, and has none until it holds a shard or joins afresh.
 * This member applies the same rule to itself (with half a lease duration, so that it never judges later than they
 * do): once it left a free shard untaken that long, holds no shard, and sees a shard the assignment gives it held by
 * another live member, the others have taken its shards for themselves, so it joins afresh, which they count as a new
 * member. So does a member that did not read the group for two lease durations (it was stalled, and may have been
 * judged meanwhile). Nothing else makes it join afresh: a shard still being handed over (however long the drain), a
 * shard held by a login outside the group, or members that disagree about a third member are waited out. Not
 * thread-safe: the member's thread only.
 */
final class OwnClaim {

    private static final long NONE = Long.MIN_VALUE;

    private final String self;
    private final long judgedAfterNanos;
    private final long stalledAfterNanos;
    private long waitedOnSince = NONE;
    private long lastRead = NONE;
    private boolean lost;

    OwnClaim(String self, long leaseDurationNanos) {
        this.self = self;
        this.judgedAfterNanos = leaseDurationNanos / 2;
        this.stalledAfterNanos = 2 * leaseDurationNanos;
    }

    /**
     * Whether this member should join afresh, given the assignment {@code full} computed with every live member and
     * the current {@code holders} and {@code pins}, read at {@code now} (ticker).
     */
    boolean joinAfresh(Assignment full, Map<Integer, Assignment.Holding> holders, List<Assignment.Pin> pins, long now) {
        // a member reads the group at least every lease duration: a longer gap means this member was stalled, and the
        // others may have judged it meanwhile without it seeing the shard it was given
        boolean stalled = lastRead != NONE && now - lastRead >= stalledAfterNanos;
        lastRead = now;
        Set<String> live = new HashSet<>();
        full.members().forEach(m -> live.add(m.id()));
        boolean holdsOne = false;
        for (Assignment.Holding h : holders.values()) {
            holdsOne |= h.holder().equals(self);
        }
        if (holdsOne) {
            reset();
            return false;
        }
        lost |= stalled;
        boolean waitedOn = false;
        boolean keptByAMember = false;
        for (int shard : full.shardsOf(self)) {
            Assignment.Holding h = holders.get(shard);
            if (h == null) {
                waitedOn |= pins.stream().noneMatch(p -> p.shard() == shard);
            } else if (!h.holder().equals(self) && live.contains(h.holder())) {
                keptByAMember = true;
            }
        }
        if (!waitedOn) {
            waitedOnSince = NONE;
        } else if (waitedOnSince == NONE) {
            waitedOnSince = now;
        } else if (now - waitedOnSince >= judgedAfterNanos) {
            lost = true;
        }
        if (lost && keptByAMember) {
            reset();
            return true;
        }
        return false;
    }

    /** When this member's own judgement is next due (ticker), or {@code none}. */
    long nextDecision(long none) {
        if (waitedOnSince != NONE && waitedOnSince + judgedAfterNanos - none < 0) {
            return waitedOnSince + judgedAfterNanos;
        }
        return none;
    }

    /** After joining afresh or taking a shard: the others count this member again. */
    void reset() {
        waitedOnSince = NONE;
        lost = false;
    }
}
