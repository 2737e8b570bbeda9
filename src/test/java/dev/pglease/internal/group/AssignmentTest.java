package dev.pglease.internal.group;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.internal.group.Assignment.Member;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The assignment rule of lease groups, property by property. Random cases are seeded: a failure names its seed and
 * case, and replays.
 */
@Tag("core")
class AssignmentTest {

    private static final Instant T0 = Instant.parse("2026-01-01T00:00:00Z");
    private static final long SEED = 20260105L;
    private static final int CASES = 400;

    @ParameterizedTest(name = "{0} shards over {1} members: counts differ by at most one")
    @CsvSource({"1,1", "1,5", "7,3", "64,3", "64,5", "64,64", "64,65", "1024,32", "10000,100", "5,7"})
    void withEqualWeightsEveryMemberOwnsItsShareRoundedDownOrUp(int shards, int memberCount) {
        List<Member> members = members(memberCount);
        Assignment a = Assignment.compute(shards, members, Map.of());
        int min = Integer.MAX_VALUE;
        int max = 0;
        for (Member m : members) {
            int n = a.shardsOf(m.id()).size();
            min = Math.min(min, n);
            max = Math.max(max, n);
            assertThat(n).isEqualTo(a.quotaOf(m.id()));
        }
        assertThat(max - min).isLessThanOrEqualTo(1);
        assertThat(min).isEqualTo(shards / memberCount);
        assertEveryShardAssignedOnce(a, members);
    }

    @Test
    void balanceHoldsWithinOneFromAnyStartingOwnershipWhenWeightsAreEqual() {
        SplittableRandom random = new SplittableRandom(SEED);
        for (int c = 0; c < CASES; c++) {
            int shards = 1 + random.nextInt(200);
            int count = 1 + random.nextInt(12);
            List<Member> members = members(count);
            Map<Integer, String> owners = randomOwners(random, shards, members, 0.7);
            Assignment a = Assignment.compute(shards, members, owners);
            int min = members.stream()
                    .mapToInt(m -> a.shardsOf(m.id()).size())
                    .min()
                    .orElseThrow();
            int max = members.stream()
                    .mapToInt(m -> a.shardsOf(m.id()).size())
                    .max()
                    .orElseThrow();
            assertThat(max - min).as("seed %d case %d: %s", SEED, c, a).isLessThanOrEqualTo(1);
            assertEveryShardAssignedOnce(a, members);
        }
    }

    @Test
    void quotasAreProportionalToWeightRoundedDownOrUp() {
        SplittableRandom random = new SplittableRandom(SEED + 1);
        for (int c = 0; c < CASES; c++) {
            int shards = 1 + random.nextInt(500);
            List<Member> members = new ArrayList<>();
            int count = 1 + random.nextInt(8);
            long total = 0;
            for (int i = 0; i < count; i++) {
                int weight = 1 + random.nextInt(10);
                total += weight;
                members.add(new Member("m" + i, weight, random.nextInt(3) - 1, T0.plusSeconds(i)));
            }
            Assignment a = Assignment.compute(shards, members, randomOwners(random, shards, members, 0.5));
            for (Member m : members) {
                long exact = (long) shards * m.weight();
                long floor = exact / total;
                long ceil = floor + (exact % total == 0 ? 0 : 1);
                assertThat((long) a.shardsOf(m.id()).size())
                        .as(
                                "seed %d case %d, %s weight %d of %d, %d shards",
                                SEED + 1, c, m.id(), m.weight(), total, shards)
                        .isBetween(floor, ceil);
            }
            assertEveryShardAssignedOnce(a, members);
        }
    }

    @Test
    void aWeightTwoMemberOwnsTwiceTheShardsOfAWeightOneMember() {
        List<Member> members = List.of(member("light", 1, 0, 0), member("heavy", 2, 0, 1));
        Assignment a = Assignment.compute(63, members, Map.of());
        assertThat(a.shardsOf("light")).hasSize(21);
        assertThat(a.shardsOf("heavy")).hasSize(42);
    }

    @Test
    void aJoinMovesAtMostTheNewcomersCeilingShareAndOnlyToTheNewcomer() {
        SplittableRandom random = new SplittableRandom(SEED + 2);
        for (int c = 0; c < CASES; c++) {
            int shards = 1 + random.nextInt(300);
            int count = 1 + random.nextInt(10);
            List<Member> members = members(count);
            Map<Integer, String> settled = settle(shards, members, randomOwners(random, shards, members, 0.5));
            List<Member> joined = new ArrayList<>(members);
            joined.add(member("newcomer", 1, 0, 1000));
            Assignment after = Assignment.compute(shards, joined, settled);
            int moved = 0;
            for (int s = 0; s < shards; s++) {
                if (!after.ownerOf(s).equals(settled.get(s))) {
                    moved++;
                    assertThat(after.ownerOf(s))
                            .as("seed %d case %d: shard %d moves to an old member", SEED + 2, c, s)
                            .isEqualTo("newcomer");
                }
            }
            int bound = (shards + count) / (count + 1); // ceil(N / (M + 1))
            assertThat(moved)
                    .as("seed %d case %d: %d shards, %d members", SEED + 2, c, shards, count)
                    .isLessThanOrEqualTo(bound);
        }
    }

    @Test
    void aLeaveMovesOnlyTheLeaversShards() {
        SplittableRandom random = new SplittableRandom(SEED + 3);
        for (int c = 0; c < CASES; c++) {
            int shards = 1 + random.nextInt(300);
            int count = 2 + random.nextInt(10);
            List<Member> members = members(count);
            Map<Integer, String> settled = settle(shards, members, randomOwners(random, shards, members, 0.5));
            Member leaver = members.get(random.nextInt(count));
            List<Member> rest = new ArrayList<>(members);
            rest.remove(leaver);
            Assignment after = Assignment.compute(shards, rest, settled);
            for (int s = 0; s < shards; s++) {
                if (!settled.get(s).equals(leaver.id())) {
                    assertThat(after.ownerOf(s))
                            .as("seed %d case %d: shard %d of a member that stayed", SEED + 3, c, s)
                            .isEqualTo(settled.get(s));
                }
            }
        }
    }

    @Test
    void aCrashedMembersShardsGoToTheOthersAndNobodyElsesMove() {
        List<Member> members = members(4);
        Map<Integer, String> settled = settle(64, members, Map.of());
        Map<Integer, String> stillHeld = new HashMap<>(settled); // the crashed member's leases are still unexpired
        Assignment after = Assignment.compute(64, members.subList(1, 4), stillHeld);
        for (int s = 0; s < 64; s++) {
            if (!settled.get(s).equals("m0")) {
                assertThat(after.ownerOf(s)).isEqualTo(settled.get(s));
            } else {
                assertThat(after.ownerOf(s)).isNotEqualTo("m0");
            }
        }
        assertThat(after.shardsOf("m1").size()
                        + after.shardsOf("m2").size()
                        + after.shardsOf("m3").size())
                .isEqualTo(64);
    }

    @Test
    void grantsThatLapsedWithoutAChangeOfMembersGoBackToTheirHoldersWhateverShareOfThemLapsed() {
        SplittableRandom random = new SplittableRandom(SEED + 11);
        for (int c = 0; c < CASES; c++) {
            int shards = 1 + random.nextInt(300);
            int count = 1 + random.nextInt(10);
            List<Member> members = members(count);
            // settled after a join, so the owners are not what dealing every shard afresh would give
            Map<Integer, String> before = settle(shards, members.subList(0, Math.max(1, count - 1)), Map.of());
            Map<Integer, String> settled = settle(shards, members, before);
            Map<Integer, Assignment.Holding> held = new HashMap<>();
            Map<Integer, Assignment.Holding> lapsed = new HashMap<>();
            double lapsedFraction = random.nextDouble();
            settled.forEach((shard, owner) -> {
                if (random.nextDouble() < lapsedFraction) {
                    lapsed.put(shard, new Assignment.Holding(owner, 1));
                } else {
                    held.put(shard, new Assignment.Holding(owner, 1));
                }
            });
            Assignment after = Assignment.compute(shards, members, held, List.of(), lapsed);
            for (int s = 0; s < shards; s++) {
                assertThat(after.ownerOf(s))
                        .as(
                                "seed %d case %d: shard %d (%s)",
                                SEED + 11, c, s, lapsed.containsKey(s) ? "lapsed" : "held")
                        .isEqualTo(settled.get(s));
            }
        }
    }

    @Test
    void aLapsedGrantBeyondItsHoldersQuotaIsDealtLikeAFreeShard() {
        List<Member> members = members(2);
        Map<Integer, Assignment.Holding> lapsed = new HashMap<>();
        for (int s = 0; s < 8; s++) {
            lapsed.put(s, new Assignment.Holding("m0", 1)); // m0 held every shard, as before m1 joined
        }
        Assignment a = Assignment.compute(8, members, Map.of(), List.of(), lapsed);
        assertThat(a.shardsOf("m0")).hasSize(4);
        assertThat(a.shardsOf("m1")).hasSize(4);
        for (int s : a.shardsOf("m0")) {
            long mine = Assignment.score(Assignment.memberHash("m0"), s);
            for (int other : a.shardsOf("m1")) {
                assertThat(Long.compareUnsigned(mine, Assignment.score(Assignment.memberHash("m0"), other)))
                        .as("m0 keeps the lapsed shards it ranks highest: %d over %d", s, other)
                        .isPositive();
            }
        }
    }

    @Test
    void aMemberOverItsQuotaWhoseGrantsLapseKeepsTheShardsItKeptWhileTheyWereHeld() {
        List<Member> members = members(2); // 5 shards: quotas 3 (m0, joined first) and 2 (m1)
        long h = Assignment.memberHash("m1");
        List<Integer> byRank = new ArrayList<>(List.of(0, 1, 2, 3, 4));
        byRank.sort((x, y) -> Long.compareUnsigned(Assignment.score(h, y), Assignment.score(h, x)));
        int handedOff = byRank.get(4); // the shard m1 ranks lowest, and its newest grant (an operator moved it there)
        Map<Integer, Assignment.Holding> held = new HashMap<>();
        held.put(byRank.get(0), new Assignment.Holding("m1", 1));
        held.put(byRank.get(1), new Assignment.Holding("m1", 2));
        held.put(handedOff, new Assignment.Holding("m1", 3));
        held.put(byRank.get(2), new Assignment.Holding("m0", 1));
        held.put(byRank.get(3), new Assignment.Holding("m0", 1));
        Assignment whileHeld = Assignment.compute(5, members, held, List.of());
        assertThat(whileHeld.shardsOf("m1")).contains(handedOff);
        Assignment afterLapse = Assignment.compute(5, members, Map.of(), List.of(), held);
        assertThat(afterLapse.shardsOf("m1")).isEqualTo(whileHeld.shardsOf("m1"));
        assertThat(afterLapse.shardsOf("m0")).isEqualTo(whileHeld.shardsOf("m0"));
    }

    @Test
    void aLapsedGrantOfAHolderThatIsNotALiveMemberOrOfAShardHeldOrHandedOffIsIgnored() {
        List<Member> members = members(3);
        Map<Integer, String> settled = settle(12, members, Map.of());
        int held = 0;
        int pinned = 1;
        int outsiders = 2;
        String other = settled.get(held).equals("m1") ? "m2" : "m1";
        Map<Integer, Assignment.Holding> owners = new HashMap<>(holdings(settled));
        owners.remove(pinned);
        owners.remove(outsiders);
        List<Assignment.Pin> pins = List.of(new Assignment.Pin(pinned, "m9", "m2"));
        Map<Integer, Assignment.Holding> lapsed = Map.of(
                held,
                new Assignment.Holding(other, 1),
                pinned,
                new Assignment.Holding("m1", 1),
                outsiders,
                new Assignment.Holding("gone", 1),
                40,
                new Assignment.Holding("m0", 1),
                -1,
                new Assignment.Holding("m0", 1));
        Assignment with = Assignment.compute(12, members, owners, pins, lapsed);
        Assignment without = Assignment.compute(12, members, owners, pins, Map.of());
        assertSameTarget(with, without, "lapsed entries that do not apply");
        assertThat(with.ownerOf(held)).isEqualTo(settled.get(held));
        assertThat(with.ownerOf(pinned)).isEqualTo("m2");
    }

    @Test
    void aSettledGroupMovesNothing() {
        SplittableRandom random = new SplittableRandom(SEED + 4);
        for (int c = 0; c < CASES; c++) {
            int shards = 1 + random.nextInt(300);
            List<Member> members = weightedMembers(random, 1 + random.nextInt(10));
            Map<Integer, String> settled = settle(shards, members, randomOwners(random, shards, members, 0.5));
            Assignment again = Assignment.compute(shards, members, settled);
            for (int s = 0; s < shards; s++) {
                assertThat(again.ownerOf(s))
                        .as("seed %d case %d shard %d", SEED + 4, c, s)
                        .isEqualTo(settled.get(s));
            }
        }
    }

    @Test
    void everyMemberComputesTheSameTargetWhateverOrderItReadTheMembersIn() {
        SplittableRandom random = new SplittableRandom(SEED + 5);
        for (int c = 0; c < CASES; c++) {
            int shards = 1 + random.nextInt(300);
            List<Member> members = weightedMembers(random, 1 + random.nextInt(10));
            Map<Integer, String> owners = randomOwners(random, shards, members, 0.6);
            Assignment first = Assignment.compute(shards, members, owners);
            List<Member> shuffled = new ArrayList<>(members);
            Collections.shuffle(shuffled, new java.util.Random(c));
            Assignment second = Assignment.compute(shards, shuffled, new HashMap<>(owners));
            for (int s = 0; s < shards; s++) {
                assertThat(second.ownerOf(s))
                        .as("seed %d case %d shard %d", SEED + 5, c, s)
                        .isEqualTo(first.ownerOf(s));
            }
        }
    }

    @Test
    void withOneShardTheHighestPriorityMemberLeadsEvenOverTheCurrentOwner() {
        List<Member> members = List.of(member("old", 1, 0, 0), member("preferred", 1, 5, 10), member("low", 1, -1, 1));
        Assignment a = Assignment.compute(1, members, Map.of(0, "old"));
        assertThat(a.ownerOf(0)).isEqualTo("preferred");
    }

    @Test
    void withOneShardAndEqualPrioritiesTheEarliestJoinedMemberLeadsWhoeverHoldsItNow() {
        List<Member> members = List.of(member("first", 1, 0, 0), member("owner", 1, 0, 5), member("third", 1, 0, 9));
        assertThat(Assignment.compute(1, members, Map.of(0, "owner")).ownerOf(0))
                .isEqualTo("first");
    }

    @Test
    void quotasDependOnTheMembersAloneNotOnWhoOwnsWhatWhileShardsMove() {
        SplittableRandom random = new SplittableRandom(SEED + 6);
        for (int c = 0; c < CASES; c++) {
            int shards = 1 + random.nextInt(300);
            List<Member> members = weightedMembers(random, 1 + random.nextInt(10));
            Assignment one = Assignment.compute(shards, members, randomOwners(random, shards, members, 0.8));
            Assignment other = Assignment.compute(shards, members, randomOwners(random, shards, members, 0.8));
            for (Member m : members) {
                assertThat(one.quotaOf(m.id()))
                        .as("seed %d case %d %s", SEED + 6, c, m.id())
                        .isEqualTo(other.quotaOf(m.id()));
            }
        }
    }

    @Test
    void withOneShardAndNoOwnerTheEarliestJoinedMemberOfTheHighestPriorityLeads() {
        List<Member> members = List.of(member("late", 1, 2, 9), member("early", 1, 2, 1), member("low", 1, 0, 0));
        assertThat(Assignment.compute(1, members, Map.of()).ownerOf(0)).isEqualTo("early");
    }

    @Test
    void higherPriorityMembersGetTheLeftoverShards() {
        List<Member> members =
                List.of(member("a", 1, 0, 0), member("b", 1, 0, 1), member("vip", 1, 3, 2), member("c", 1, 0, 3));
        Assignment a = Assignment.compute(65, members, Map.of());
        assertThat(a.shardsOf("vip")).hasSize(17);
        assertThat(a.shardsOf("a")).hasSize(16);
    }

    @Test
    void shardsHeldByHoldersThatAreNotLiveMembersAreAssignedLikeFreeOnes() {
        List<Member> members = members(2);
        Map<Integer, String> owners = new HashMap<>();
        for (int s = 0; s < 10; s++) {
            owners.put(s, "gone");
        }
        Assignment a = Assignment.compute(10, members, owners);
        assertThat(a.shardsOf("m0")).hasSize(5);
        assertThat(a.shardsOf("m1")).hasSize(5);
    }

    @Test
    void aMemberAboveItsQuotaKeepsTheShardsItRanksHighestAndGivesUpTheRest() {
        List<Member> two = members(2);
        Map<Integer, String> allMine = new HashMap<>();
        for (int s = 0; s < 8; s++) {
            allMine.put(s, "m0");
        }
        Assignment a = Assignment.compute(8, two, allMine);
        long h = Assignment.memberHash("m0");
        List<Integer> kept = new ArrayList<>(a.shardsOf("m0"));
        List<Integer> given = new ArrayList<>(a.shardsOf("m1"));
        assertThat(kept).hasSize(4);
        for (int k : kept) {
            for (int g : given) {
                assertThat(Long.compareUnsigned(Assignment.score(h, k), Assignment.score(h, g)))
                        .as("kept %d over given %d", k, g)
                        .isPositive();
            }
        }
    }

    @Test
    void aHandedOffShardGoesToAnAllowedMemberAndItsReceiverGivesOneOtherShardBackThroughEveryStepOfTheMove() {
        SplittableRandom random = new SplittableRandom(SEED + 7);
        for (int c = 0; c < CASES; c++) {
            int shards = 2 + random.nextInt(200);
            List<Member> members = random.nextBoolean()
                    ? members(2 + random.nextInt(8))
                    : weightedMembers(random, 2 + random.nextInt(8));
            Map<Integer, String> settled = settle(shards, members, randomOwners(random, shards, members, 0.5));
            int k = random.nextInt(shards);
            String from = settled.get(k);
            String prefix = random.nextBoolean()
                    ? null
                    : members.get(random.nextInt(members.size())).id();
            if (prefix != null && prefix.equals(from)) {
                prefix = null;
            }
            String what = "seed " + (SEED + 7) + " case " + c + ": shard " + k + " of " + from + " to " + prefix;

            // 1. handed off, nobody has it yet
            Map<Integer, Assignment.Holding> owners = holdings(settled);
            owners.remove(k);
            Assignment pinned =
                    Assignment.compute(shards, members, owners, List.of(new Assignment.Pin(k, from, prefix)));
            String receiver = pinned.ownerOf(k);
            assertThat(receiver).as(what).isNotEqualTo(from);
            if (prefix != null) {
                assertThat(receiver).as(what).startsWith(prefix);
            }
            if (pinned.quotaOf(receiver) == 0) {
                // only a prefix naming a member without a share leads here: it has the shard only until it took it
                assertThat(prefix).as(what).isNotNull();
                owners.put(k, new Assignment.Holding(receiver, 2));
                assertThat(Assignment.compute(shards, members, owners, List.of())
                                .ownerOf(k))
                        .as(what + ": a member without a share gives it up")
                        .isNotEqualTo(receiver);
                continue;
            }
            List<Integer> moved = new ArrayList<>();
            for (int s = 0; s < shards; s++) {
                if (!pinned.ownerOf(s).equals(settled.get(s))) {
                    moved.add(s);
                }
            }
            assertThat(moved).as(what).contains(k).hasSizeLessThanOrEqualTo(2);
            for (int s : moved) {
                if (s != k) {
                    assertThat(settled.get(s))
                            .as(what + ": the shard given back")
                            .isEqualTo(receiver);
                    assertThat(pinned.ownerOf(s))
                            .as(what + ": the shard given back")
                            .isEqualTo(from);
                }
            }
            for (Member m : members) {
                assertThat(pinned.shardsOf(m.id())).as(what).hasSize(pinned.quotaOf(m.id()));
            }

            // 2. the receiver took it (its newest grant) and still holds the shard it gives back
            owners.put(k, new Assignment.Holding(receiver, 2));
            assertSameTarget(Assignment.compute(shards, members, owners, List.of()), pinned, what + ", taken");
            // 3. it gave that shard up; 4. the member that lost the handed-off shard took it
            for (int s : moved) {
                if (s != k) {
                    owners.remove(s);
                    assertSameTarget(Assignment.compute(shards, members, owners, List.of()), pinned, what + ", freed");
                    owners.put(s, new Assignment.Holding(from, 3));
                }
            }
            assertSameTarget(Assignment.compute(shards, members, owners, List.of()), pinned, what + ", settled");
        }
    }

    @Test
    void aHandedOffShardThatNoLiveMemberMayTakeIsAssignedLikeAFreeOne() {
        List<Member> members = members(3);
        Map<Integer, String> settled = settle(12, members, Map.of());
        int k = settled.entrySet().stream()
                .filter(e -> e.getValue().equals("m1"))
                .findFirst()
                .orElseThrow()
                .getKey();
        Map<Integer, Assignment.Holding> owners = holdings(settled);
        owners.remove(k);
        Assignment a = Assignment.compute(12, members, owners, List.of(new Assignment.Pin(k, "m1", "node9/")));
        assertThat(a.ownerOf(k))
                .as("nobody starts with node9/: the rule gives it back to its quota")
                .isEqualTo("m1");
        Assignment alone =
                Assignment.compute(12, members.subList(1, 2), Map.of(), List.of(new Assignment.Pin(k, "m1", null)));
        assertThat(alone.ownerOf(k)).isEqualTo("m1");
    }

    @Test
    void aMemberAboveItsQuotaKeepsItsNewestGrantsFirst() {
        List<Member> two = members(2);
        Map<Integer, Assignment.Holding> owners = new HashMap<>();
        for (int s = 0; s < 8; s++) {
            owners.put(s, new Assignment.Holding("m0", 100 + s));
        }
        Assignment a = Assignment.compute(8, two, owners, List.of());
        assertThat(a.shardsOf("m0")).containsExactly(4, 5, 6, 7);
        assertThat(a.shardsOf("m1")).containsExactly(0, 1, 2, 3);
    }

    @Test
    void withoutHandoffsAndGrantTimesTheFullRuleIsTheRuleOfOwnersAlone() {
        SplittableRandom random = new SplittableRandom(SEED + 8);
        for (int c = 0; c < CASES; c++) {
            int shards = 1 + random.nextInt(300);
            List<Member> members = weightedMembers(random, 1 + random.nextInt(10));
            Map<Integer, String> owners = randomOwners(random, shards, members, 0.6);
            assertSameTarget(
                    Assignment.compute(shards, members, holdings(owners), List.of()),
                    Assignment.compute(shards, members, owners),
                    "seed " + (SEED + 8) + " case " + c);
        }
    }

    @Test
    void withoutLiveMembersNoShardHasATarget() {
        Assignment a = Assignment.compute(4, List.of(), Map.of(0, "gone"));
        assertThat(a.ownerOf(0)).isNull();
        assertThat(a.shardsOf("anyone")).isEmpty();
    }

    @Test
    void theMemberHashIsFnv1aOfTheUtf8Bytes() {
        // reference values of 64-bit FNV-1a: other implementations (any language) must agree
        assertThat(Assignment.memberHash("")).isEqualTo(0xcbf29ce484222325L);
        assertThat(Assignment.memberHash("a")).isEqualTo(0xaf63dc4c8601ec8cL);
        assertThat(Assignment.memberHash("foobar")).isEqualTo(0x85944171f73967e8L);
    }

    @Test
    void badInputIsRefusedWithTheValue() {
        assertThatThrownBy(() -> Assignment.compute(0, members(1), Map.of()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("got 0");
        assertThatThrownBy(() -> Assignment.compute(4, List.of(member("x", 1, 0, 0), member("x", 1, 0, 1)), Map.of()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("x");
    }

    // ---- helpers ----

    /** Applies targets until nothing changes: the state a group settles in after cooperative moves. */
    private static Map<Integer, String> settle(int shards, List<Member> members, Map<Integer, String> owners) {
        Map<Integer, String> current = new HashMap<>(owners);
        for (int round = 0; round < 5; round++) {
            Assignment a = Assignment.compute(shards, members, current);
            Map<Integer, String> next = new HashMap<>();
            for (int s = 0; s < shards; s++) {
                next.put(s, a.ownerOf(s));
            }
            if (next.equals(current)) {
                return current;
            }
            current = next;
        }
        throw new AssertionError("the target did not settle within 5 rounds");
    }

    private static Map<Integer, Assignment.Holding> holdings(Map<Integer, String> owners) {
        Map<Integer, Assignment.Holding> out = new HashMap<>();
        owners.forEach((shard, holder) -> out.put(shard, new Assignment.Holding(holder, 1)));
        return out;
    }

    private static void assertSameTarget(Assignment actual, Assignment expected, String what) {
        for (int s = 0; s < expected.shards(); s++) {
            assertThat(actual.ownerOf(s)).as(what + ": shard " + s).isEqualTo(expected.ownerOf(s));
        }
    }

    private static void assertEveryShardAssignedOnce(Assignment a, List<Member> members) {
        int total = 0;
        for (Member m : members) {
            total += a.shardsOf(m.id()).size();
        }
        assertThat(total).isEqualTo(a.shards());
        for (int s = 0; s < a.shards(); s++) {
            assertThat(a.ownerOf(s)).isNotNull();
        }
    }

    private static Map<Integer, String> randomOwners(
            SplittableRandom random, int shards, List<Member> members, double heldFraction) {
        Map<Integer, String> owners = new HashMap<>();
        for (int s = 0; s < shards; s++) {
            if (random.nextDouble() < heldFraction) {
                owners.put(
                        s,
                        random.nextDouble() < 0.1
                                ? "outsider"
                                : members.get(random.nextInt(members.size())).id());
            }
        }
        return owners;
    }

    private static List<Member> members(int count) {
        List<Member> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            out.add(member("m" + i, 1, 0, i));
        }
        return out;
    }

    private static List<Member> weightedMembers(SplittableRandom random, int count) {
        List<Member> out = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            out.add(member("m" + i, 1 + random.nextInt(5), random.nextInt(3), random.nextInt(100)));
        }
        return out;
    }

    private static Member member(String id, int weight, int priority, int joinedSecond) {
        return new Member(id, weight, priority, T0.plusSeconds(joinedSecond));
    }
}
