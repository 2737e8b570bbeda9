package dev.pglease.internal.group;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A member tells when the others stopped counting it: it left a free shard it was given untaken (their rule), holds
 * none, and sees the shards given to it held by other members; never for a shard still being handed over or held
 * by a login outside the group, however long.
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
    void aMemberThatLeftAFreeShardUntakenAndThenSeesItsShardsKeptByMembersJoinsAfreshOnce() {
        OwnClaim claim = new OwnClaim("me", LEASE);
        Map<Integer, Assignment.Holding> twoFree = heldBy("other", 0, 1);
        Assignment full = Assignment.compute(4, live, twoFree, List.of());
        assertThat(full.shardsOf("me")).hasSize(2);
        assertThat(claim.joinAfresh(full, twoFree, List.of(), 0)).isFalse();
        assertThat(claim.nextDecision(Long.MAX_VALUE)).isEqualTo(LEASE / 2);
        assertThat(claim.joinAfresh(full, twoFree, List.of(), LEASE / 2))
                .as("judged by their rule, but nothing kept from it yet")
                .isFalse();

        Map<Integer, Assignment.Holding> allKept = heldBy("other", 0, 1, 2, 3);
        Assignment now = Assignment.compute(4, live, allKept, List.of());
        assertThat(claim.joinAfresh(now, allKept, List.of(), LEASE + 1)).isTrue();
        assertThat(claim.joinAfresh(now, allKept, List.of(), LEASE + 2))
                .as("once: after joining afresh it is counted again")
                .isFalse();
    }

    @Test
    void aShardStillHandedOverOrHeldOutsideTheGroupIsWaitedForHoweverLong() {
        OwnClaim claim = new OwnClaim("me", LEASE);
        Map<Integer, Assignment.Holding> allKept = heldBy("other", 0, 1, 2, 3);
        Assignment full = Assignment.compute(4, live, allKept, List.of());
        for (long t = 0; t <= 100 * LEASE; t += LEASE / 4) {
            assertThat(claim.joinAfresh(full, allKept, List.of(), t))
                    .as("a drain, at %d", t)
                    .isFalse();
        }
        Map<Integer, Assignment.Holding> outside = heldBy("other", 0, 1);
        outside.putAll(heldBy("another login", 2, 3));
        Assignment withOutside = Assignment.compute(4, live, outside, List.of());
        for (long t = 0; t <= 100 * LEASE; t += LEASE / 4) {
            assertThat(claim.joinAfresh(withOutside, outside, List.of(), t))
                    .as("held by a login outside the group, at %d", t)
                    .isFalse();
        }
    }

    @Test
    void holdingAShardForgetsAnEarlierLoss() {
        OwnClaim claim = new OwnClaim("me", LEASE);
        Map<Integer, Assignment.Holding> twoFree = heldBy("other", 0, 1);
        Assignment full = Assignment.compute(4, live, twoFree, List.of());
        claim.joinAfresh(full, twoFree, List.of(), 0);
        claim.joinAfresh(full, twoFree, List.of(), LEASE);
        Map<Integer, Assignment.Holding> oneMine = heldBy("other", 0, 1, 2);
        oneMine.put(3, new Assignment.Holding("me", 2));
        assertThat(claim.joinAfresh(Assignment.compute(4, live, oneMine, List.of()), oneMine, List.of(), LEASE + 1))
                .isFalse();
        Map<Integer, Assignment.Holding> allKept = heldBy("other", 0, 1, 2, 3);
        assertThat(claim.joinAfresh(Assignment.compute(4, live, allKept, List.of()), allKept, List.of(), LEASE + 2))
                .as("it held one since: the others count it")
                .isFalse();
    }

    @Test
    void aMemberThatWasStalledForTwoLeaseDurationsAndSeesItsShardsKeptJoinsAfresh() {
        OwnClaim claim = new OwnClaim("me", LEASE);
        Map<Integer, Assignment.Holding> allKept = heldBy("other", 0, 1, 2, 3);
        Assignment full = Assignment.compute(4, live, allKept, List.of());
        assertThat(claim.joinAfresh(full, allKept, List.of(), 0)).isFalse();
        assertThat(claim.joinAfresh(full, allKept, List.of(), LEASE))
                .as("read on time")
                .isFalse();
        assertThat(claim.joinAfresh(full, allKept, List.of(), 3 * LEASE))
                .as("after a stall")
                .isTrue();
    }
}
