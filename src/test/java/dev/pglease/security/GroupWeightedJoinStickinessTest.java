package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.internal.group.Assignment;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The stickiness limit of the assignment rule with weights (1 to 1000, as members may choose), as documented: with
 * equal weights a join never raises an earlier member's quota and a leave never lowers one; with unequal weights
 * every quota stays within its exact share rounded down or up, so a join may raise a staying member's quota by one
 * (one shard moves to it from another staying member) and a leave may lower one by one, never more.
 */
@Tag("security")
class GroupWeightedJoinStickinessTest {

    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");
    private static final long SEED = 20261205L;
    private static final int[] WEIGHTS = {1, 2, 3, 5, 7, 10, 1000};

    @Test
    void withUnequalWeightsAJoinMayRaiseAStayingMembersQuotaByOneAndMovesItOneShardAtMost() {
        Assignment.Member a = new Assignment.Member("a", 1, 0, T0);
        Assignment.Member b = new Assignment.Member("b", 10, 0, T0.plusSeconds(1));
        Assignment.Member c = new Assignment.Member("c", 1, 0, T0.plusSeconds(2));
        Map<Integer, String> owners = owners(Assignment.compute(16, List.of(a, b), Map.of()));
        Assignment joined = Assignment.compute(16, List.of(a, b, c), owners);
        assertThat(joined.quotaOf("a"))
                .as("a (weight 1) after c (weight 1) joined a and b (weight 10) over 16 shards: exact share 16/12 "
                        + "rounded up, one more than before (16/11 rounded down)")
                .isEqualTo(2);
        assertThat(movedToStayingMembers(owners, joined, "c"))
                .as("shards the join moved to members other than the newcomer")
                .containsExactly("a");
    }

    @Test
    void withUnequalWeightsALeaveMayLowerAStayingMembersQuotaByOneAtMost() {
        Assignment.Member a = new Assignment.Member("a", 3, 0, T0);
        Assignment.Member b = new Assignment.Member("b", 1, 0, T0.plusSeconds(1));
        Assignment.Member c = new Assignment.Member("c", 1, 0, T0.plusSeconds(2));
        Assignment before = Assignment.compute(2, List.of(a, b, c), Map.of());
        Assignment after = Assignment.compute(2, List.of(a, b), Map.of());
        assertThat(before.quotaOf("b") - after.quotaOf("b"))
                .as("how much b's quota fell when c (which owned %s) left", before.shardsOf("c"))
                .isEqualTo(1);
    }

    @Test
    void aJoinRaisesAndALeaveLowersAStayingMembersQuotaByOneAtMostAndNeverWithEqualWeights() {
        SplittableRandom random = new SplittableRandom(SEED);
        for (int n = 0; n < 2000; n++) {
            int shards = 1 + random.nextInt(200);
            boolean equal = n % 2 == 0;
            List<Assignment.Member> members = new ArrayList<>();
            int count = 1 + random.nextInt(8);
            int weight = WEIGHTS[random.nextInt(WEIGHTS.length)];
            for (int i = 0; i <= count; i++) {
                members.add(new Assignment.Member(
                        "m" + i,
                        equal ? weight : WEIGHTS[random.nextInt(WEIGHTS.length)],
                        random.nextInt(3),
                        T0.plusSeconds(i)));
            }
            List<Assignment.Member> staying = members.subList(0, count);
            Map<Integer, String> settled = owners(Assignment.compute(shards, staying, Map.of()));
            Assignment joined = Assignment.compute(shards, members, settled);
            for (Assignment.Member m : staying) {
                int was = Assignment.compute(shards, staying, settled).quotaOf(m.id());
                int now = joined.quotaOf(m.id());
                String what = "case " + n + " (" + shards + " shards, " + members + "): quota of " + m.id();
                // the newcomer's leave is the reverse: a quota it lowers by more than one fails here too
                assertThat(now).as(what + " after the join").isLessThanOrEqualTo(equal ? was : was + 1);
            }
            assertThat(movedToStayingMembers(settled, joined, "m" + count))
                    .as("case %d: members other than the newcomer that received shards", n)
                    .doesNotHaveDuplicates()
                    .satisfies(moved -> {
                        if (equal) {
                            assertThat(moved).isEmpty();
                        }
                    });
        }
    }

    private static Map<Integer, String> owners(Assignment a) {
        Map<Integer, String> owners = new HashMap<>();
        for (int s = 0; s < a.shards(); s++) {
            owners.put(s, a.ownerOf(s));
        }
        return owners;
    }

    /** The staying members a shard moved to, once per shard moved (not the newcomer). */
    private static List<String> movedToStayingMembers(Map<Integer, String> before, Assignment after, String newcomer) {
        List<String> to = new ArrayList<>();
        for (int s = 0; s < after.shards(); s++) {
            if (!before.get(s).equals(after.ownerOf(s)) && !after.ownerOf(s).equals(newcomer)) {
                to.add(after.ownerOf(s));
            }
        }
        return to;
    }
}
