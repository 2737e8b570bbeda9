package dev.pglease.internal.group;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Which members still have a claim to shards, as one member sees it. A member that the assignment gives a free shard
 * (nobody holds it, no operator's handoff steers it) and that does not take it within one lease duration loses its
 * claim: this member computes the assignment without it, so its shards go to the others, until it holds a shard of
 * the group or joins again. A member that joined and never campaigns (a row another login left, a stuck process) thus
 * empties no group for longer than a lease duration. The member itself is never dropped. Not thread-safe: the member's
 * thread only.
 */
final class Claims {

    private final String self;
    private final long boundNanos;
    /** Member (id and join time) to when it was first seen not taking a free shard it is given (ticker). */
    private final Map<String, Long> waitingSince = new HashMap<>();
    /** Members (id and join time) that lost their claim. */
    private final Set<String> lost = new HashSet<>();

    Claims(String self, long boundNanos) {
        this.self = self;
        this.boundNanos = boundNanos;
    }

    /**
     * The members that keep their claim, given the assignment {@code full} computed with every live member and the
     * current {@code holders} and {@code pins}, read at {@code now}.
     */
    List<Assignment.Member> keep(
            List<Assignment.Member> live,
            Assignment full,
            Map<Integer, Assignment.Holding> holders,
            List<Assignment.Pin> pins,
            long now) {
        Set<String> holding = new HashSet<>();
        holders.values().forEach(h -> holding.add(h.holder()));
        Set<Integer> pinned = new HashSet<>();
        pins.forEach(p -> pinned.add(p.shard()));
        Set<String> seen = new HashSet<>();
        List<Assignment.Member> keep = new ArrayList<>(live.size());
        for (Assignment.Member m : live) {
            String key = m.id() + '\u0000' + m.joinedAt();
            seen.add(key);
            if (m.id().equals(self) || holding.contains(m.id())) {
                waitingSince.remove(key);
                lost.remove(key);
                keep.add(m);
                continue;
            }
            boolean waitedOn = full.shardsOf(m.id()).stream()
                    .anyMatch(shard -> !holders.containsKey(shard) && !pinned.contains(shard));
            if (!waitedOn) {
                waitingSince.remove(key);
            } else if (now - waitingSince.computeIfAbsent(key, k -> now) >= boundNanos) {
                lost.add(key);
            }
            if (!lost.contains(key)) {
                keep.add(m);
            }
        }
        waitingSince.keySet().retainAll(seen);
        lost.retainAll(seen);
        return keep;
    }

    /** When a member now waited on loses its claim unless it takes its shard (ticker), or {@code none}. */
    long nextDecision(long none) {
        long next = none;
        for (long since : waitingSince.values()) {
            long at = since + boundNanos;
            if (at - next < 0) {
                next = at;
            }
        }
        return next;
    }
}
