package dev.pglease.internal.group;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A member tells when the others stopped counting it: right after it left a free shard it was given untaken for a
 * lease duration (their rule), or after {@link OwnClaim#PATIENCE} lease durations without a shard while they keep the
 * ones given to it; never while a shard it waits for is still being handed over within that patience.
 */
@Tag("core")
class OwnClaimTest {

    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");
    private static final long LEASE = 1_000_000_000L;

    private final Assignment.Member other = new Assignment.Member("other", 1, 0, T0);
    private final Assignment.Member me = new Assignment.Member("me", 1, 0, T0.plusSeconds(1));
    private final List<Assignment.Member> live = List.of(other, me);

    private static Map<Integer, Assignment.Holding> heldBy(String holder, int... shards) {
        Map<Integer, Assignment.Holding> m = new HashMap<>();
        for (int s : shards) {
            m.put(s, new Assignment.Holding(holder, 1));
        }
        return m;
    }

    @Test
    void aMemberThatLeftAFreeShardUntakenForALeaseDurationAndThenSeesItKeptJoinsAfresh() {
        OwnClaim claim = new OwnClaim("me", LEASE);
        Map<Integer, Assignment.Holding> twoFree = heldBy("other", 0, 1);
        Assignment full = Assignment.compute(4, live, twoFree, List.of());
        assertThat(full.shardsOf("me")).hasSize(2);
        assertThat(claim.joinAfresh(full, twoFree, List.of(), 0)).isFalse();
        assertThat(claim.nextDecision(Long.MAX_VALUE)).isEqualTo(LEASE);
        assertThat(claim.joinAfresh(full, twoFree, List.of(), LEASE))
                .as("lost, but nothing kept from it yet")
                .isFalse();

        Map<Integer, Assignment.Holding> allKept = heldBy("other", 0, 1, 2, 3);
        Assignment now = Assignment.compute(4, live, allKept, List.of());
        assertThat(claim.joinAfresh(now, allKept, List.of(), LEASE + 1)).isTrue();
        assertThat(claim.joinAfresh(now, allKept, List.of(), LEASE + 2))
                .as("once, then the patience again")
                .isFalse();
    }

    @Test
    void aShardStillHandedOverIsWaitedForWithPatienceAndHoldingOneResetsIt() {
        OwnClaim claim = new OwnClaim("me", LEASE);
        Map<Integer, Assignment.Holding> allKept = heldBy("other", 0, 1, 2, 3);
        Assignment full = Assignment.compute(4, live, allKept, List.of());
        assertThat(claim.joinAfresh(full, allKept, List.of(), 0)).isFalse();
        assertThat(claim.joinAfresh(full, allKept, List.of(), OwnClaim.PATIENCE * LEASE - 1))
                .isFalse();

        Map<Integer, Assignment.Holding> oneMine = heldBy("other", 0, 1, 2);
        oneMine.put(3, new Assignment.Holding("me", 2));
        assertThat(claim.joinAfresh(Assignment.compute(4, live, oneMine, List.of()), oneMine, List.of(), 0))
                .isFalse();
        assertThat(claim.joinAfresh(full, allKept, List.of(), OwnClaim.PATIENCE * LEASE))
                .as("the patience starts again after it held a shard")
                .isFalse();
        assertThat(claim.joinAfresh(full, allKept, List.of(), 2 * OwnClaim.PATIENCE * LEASE))
                .isTrue();
    }
}
