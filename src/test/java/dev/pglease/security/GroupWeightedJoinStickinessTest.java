package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.internal.group.Assignment;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The assignment rule with weights (1 to 1000, as members may choose): a newcomer is last in the order, so a join
 * never raises an earlier member's quota, and the shards a join moves all go to the newcomer; a leave never lowers a
 * remaining member's quota.
 */
@Tag("security")
class GroupWeightedJoinStickinessTest {

    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");

    @Test
    void aJoinMovesShardsOnlyToTheNewcomerAndRaisesNoEarlierMembersQuotaWithWeights() {
        Assignment.Member a = new Assignment.Member("a", 1, 0, T0);
        Assignment.Member b = new Assignment.Member("b", 10, 0, T0.plusSeconds(1));
        Assignment.Member c = new Assignment.Member("c", 1, 0, T0.plusSeconds(2));
        Assignment settled = Assignment.compute(16, List.of(a, b), Map.of());
        Map<Integer, String> owners = new HashMap<>();
        for (int s = 0; s < 16; s++) {
            owners.put(s, settled.ownerOf(s));
        }
        Assignment joined = Assignment.compute(16, List.of(a, b, c), owners);
        List<String> movedElsewhere = new ArrayList<>();
        for (int s = 0; s < 16; s++) {
            if (!owners.get(s).equals(joined.ownerOf(s)) && !joined.ownerOf(s).equals("c")) {
                movedElsewhere.add("shard " + s + ": " + owners.get(s) + " -> " + joined.ownerOf(s));
            }
        }
        assertThat(joined.quotaOf("a"))
                .as("quota of the earlier member a (weight 1) after c (weight 1) joined a and b (weight 10)")
                .isLessThanOrEqualTo(settled.quotaOf("a"));
        assertThat(movedElsewhere)
                .as("shards the join moved to a member other than the newcomer")
                .isEmpty();
    }

    @Test
    void aLeaveLowersNoRemainingMembersQuotaWithWeights() {
        Assignment.Member a = new Assignment.Member("a", 3, 0, T0);
        Assignment.Member b = new Assignment.Member("b", 1, 0, T0.plusSeconds(1));
        Assignment.Member c = new Assignment.Member("c", 1, 0, T0.plusSeconds(2));
        Assignment before = Assignment.compute(2, List.of(a, b, c), Map.of());
        Assignment after = Assignment.compute(2, List.of(a, b), Map.of());
        assertThat(after.quotaOf("b"))
                .as("quota of b after c (which owned %s) left", before.shardsOf("c"))
                .isGreaterThanOrEqualTo(before.quotaOf("b"));
    }
}
