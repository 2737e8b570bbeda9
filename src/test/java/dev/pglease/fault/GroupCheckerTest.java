package dev.pglease.fault;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The group checker on hand-made histories of a group of four shards: a clean history (two members settle, a third
 * joins and takes one shard) passes, and each planted violation of a group invariant is named.
 */
class GroupCheckerTest {
    private static final long T0 = 1_700_000_000_000L;
    private static final String G = "g";
    private final Checker checker = new Checker(new Checker.Config(1000, 200), new GroupChecker.Group(G, 4));

    private static final GroupRecords.Member A = new GroupRecords.Member("A", 1);
    private static final GroupRecords.Member B = new GroupRecords.Member("B", 2);
    private static final GroupRecords.Member C = new GroupRecords.Member("C", 3);

    private static String shard(int k) {
        return G + "/" + k;
    }

    private static Op op(
            String node,
            String holder,
            Op.Kind kind,
            Op.Outcome outcome,
            int shard,
            long token,
            long invoke,
            long complete,
            Long deadline,
            Long value,
            String detail) {
        return new Op(
                0,
                node,
                holder,
                kind,
                outcome,
                token,
                T0 + invoke,
                T0 + complete,
                deadline == null ? null : T0 + deadline,
                value,
                null,
                null,
                detail,
                shard(shard));
    }

    /** An acknowledged acquire (deadline = send + 600 ms) followed by the member's elected report. */
    private static void elected(History h, String node, String holder, int shard, long token, long at) {
        h.add(op(node, holder, Op.Kind.ACQUIRE, Op.Outcome.OK, shard, token, at - 2, at, at - 2 + 600, null, null));
        h.add(op(node, holder, Op.Kind.ELECTED, Op.Outcome.OK, shard, token, at, at, null, null, null));
    }

    private static void renewed(History h, String node, String holder, int shard, long token, long at) {
        h.add(op(node, holder, Op.Kind.RENEW, Op.Outcome.OK, shard, token, at - 2, at, at - 2 + 600, null, null));
    }

    private static void released(History h, String node, String holder, int shard, long token, long at) {
        h.add(op(node, holder, Op.Kind.RELEASE, Op.Outcome.OK, shard, token, at, at, null, null, null));
    }

    private static Map<Integer, GroupRecords.Owner> owners(String... holders) {
        Map<Integer, GroupRecords.Owner> m = new HashMap<>();
        for (int k = 0; k < holders.length; k++) {
            if (holders[k] != null) {
                // A and B hold token 1 of their shards from the start; every later owner a higher one
                m.put(k, new GroupRecords.Owner(holders[k], holders[k].equals("A") || holders[k].equals("B") ? 1 : 2));
            }
        }
        return m;
    }

    private static GroupRecords.Snapshot state(long at, Set<GroupRecords.Member> members, String... holders) {
        return new GroupRecords.Snapshot(T0 + at, members, owners(holders));
    }

    private static void settled(History h, long at, long fault, GroupRecords.Snapshot s) {
        h.addSettle(new GroupRecords.Settle(T0 + at, fault, true, s, null));
    }

    /**
     * A and B own two shards each and renew them; the group settles; C joins (started at +1500 ms), A hands shard 1
     * over (released at +1700), C takes it at +1710 with token 2; the group settles again.
     */
    private History clean() {
        return clean(2800);
    }

    /** {@link #clean()}, with B's renewals of shard 2 ending at {@code shardTwoRenewedUntil}. */
    private History clean(long shardTwoRenewedUntil) {
        History h = new History(T0);
        elected(h, "n1", "A", 0, 1, 10);
        elected(h, "n1", "A", 1, 1, 12);
        elected(h, "n2", "B", 2, 1, 14);
        elected(h, "n2", "B", 3, 1, 16);
        h.addSnapshot(state(20, Set.of(A, B), "A", "A", "B", "B"));
        for (long t = 200; t <= 2800; t += 200) {
            renewed(h, "n1", "A", 0, 1, t);
            if (t < 1700) {
                renewed(h, "n1", "A", 1, 1, t);
            }
            if (t <= shardTwoRenewedUntil) {
                renewed(h, "n2", "B", 2, 1, t);
            }
            renewed(h, "n2", "B", 3, 1, t);
        }
        settled(h, 1000, -1, state(1000, Set.of(A, B), "A", "A", "B", "B"));
        h.addFault(new FaultRecord(0, FaultKind.MEMBER_JOIN, "n3", T0 + 1100, T0 + 1500, false, null, null));
        h.add(new Op(
                0,
                "n3",
                "C",
                Op.Kind.NOTE,
                Op.Outcome.OK,
                null,
                T0 + 1500,
                T0 + 1500,
                null,
                null,
                null,
                null,
                "started pid 3"));
        h.addSnapshot(state(1600, Set.of(A, B, C), "A", "A", "B", "B"));
        h.add(op("n1", "A", Op.Kind.WRITE, Op.Outcome.OK, 1, 1, 1650, 1660, 1800L, 7L, null));
        released(h, "n1", "A", 1, 1, 1700);
        elected(h, "n3", "C", 1, 2, 1710);
        h.addSnapshot(state(1720, Set.of(A, B, C), "A", "C", "B", "B"));
        settled(h, 2800, 0, state(2800, Set.of(A, B, C), "A", "C", "B", "B"));
        return h;
    }

    @Test
    void cleanHistoryPasses() {
        CheckReport r = checker.check(clean());
        assertThat(r.violations()).as(r.render()).isEmpty();
        assertThat(r.windows()).singleElement().satisfies(w -> {
            assertThat(w.measured()).isTrue();
            assertThat(w.failoverMs())
                    .as("from the newcomer's start to a balanced group")
                    .isEqualTo(220L);
        });
        assertThat(r.groupSummary()).contains("2 settled states checked").contains("1 one join apart");
    }

    @Test
    void aMemberReportingAShardWhileAnotherMembersGrantOfItRunsBreaksInvariantEight() {
        History h = clean();
        elected(h, "n3", "C", 2, 2, 2000); // B renewed shard 2 at +2000 until +2598 and never let it go
        CheckReport r = checker.check(h);
        assertThat(r.violates(8)).as(r.render()).isTrue();
        assertThat(r.render())
                .contains("g/2: C reported owning it with token 2")
                .contains("before B's grant");
    }

    @Test
    void aShardTakenAfterItsOwnersReleaseOrDeadlineIsNoOverlap() {
        History h = clean();
        // B's last renewal of shard 3 was answered at +2800 (deadline +3398); a grant after it is no overlap
        elected(h, "n3", "C", 3, 2, 3400);
        assertThat(checker.check(h).violates(8)).isFalse();
    }

    @Test
    void anAcquireTheMemberNeverReportedAsOwnedIsNoClaim() {
        History h = clean();
        // C's acquire of shard 2 answered, then given up before C reported owning it: not an owner
        h.add(op("n3", "C", Op.Kind.ACQUIRE, Op.Outcome.OK, 2, 2, 1998, 2000, 2598L, null, null));
        assertThat(checker.check(h).violates(8)).isFalse();
    }

    @Test
    void aWriteAfterTheMemberReportedHandingTheShardOverBreaksInvariantFive() {
        History h = clean();
        h.add(op("n1", "A", Op.Kind.WRITE, Op.Outcome.FAIL, 1, 1, 1750, 1755, 2000L, null, "rejected: STALE_TOKEN"));
        CheckReport r = checker.check(h);
        assertThat(r.violates(5)).as(r.render()).isTrue();
        assertThat(r.render()).contains("started 50 ms after its node reported that grant release");
    }

    @Test
    void aWriteTheLibraryRefusedLocallyAfterTheHandOverWasNeverStarted() {
        History h = clean();
        h.add(op("n1", "A", Op.Kind.WRITE, Op.Outcome.FAIL, 1, 1, 1750, 1751, 2000L, null, "rejected: LEASE_LOST"));
        assertThat(checker.check(h).violations()).isEmpty();
    }

    /** B (shards 2 and 3) is killed at +3000; A takes shard 2 and C shard 3 at the given times. */
    private History killOfB(long aTakes, long cTakes) {
        History h = clean();
        h.addFault(new FaultRecord(0, FaultKind.KILL_LEADER, "n2", T0 + 3000, T0 + 3000, true, "B", null));
        elected(h, "n1", "A", 2, 2, aTakes);
        elected(h, "n3", "C", 3, 2, cTakes);
        return h;
    }

    @Test
    void aLostMembersShardsOwnedElsewhereWithinTheBoundPass() {
        CheckReport r = checker.check(killOfB(4100, 4300));
        assertThat(r.violations()).as(r.render()).isEmpty();
        assertThat(r.failoverMs().get(FaultKind.KILL_LEADER))
                .as("to the last of its shards")
                .containsExactly(1300L);
    }

    @Test
    void aLostMembersShardOwnedElsewhereTooLateBreaksInvariantNine() {
        CheckReport r = checker.check(killOfB(4100, 5000)); // 2000 ms > 1000 + 200 + 500
        assertThat(r.violates(9)).as(r.render()).isTrue();
        assertThat(r.render()).contains("the last of them (g/3) was owned again only 2000 ms later");
    }

    @Test
    void aPausedMemberThatTakesItsShardAgainOnANewGrantInTimePasses() {
        History h = clean();
        h.addFault(new FaultRecord(0, FaultKind.PAUSE_LEADER, "n2", T0 + 3000, T0 + 4000, true, "B", null));
        elected(h, "n1", "A", 2, 2, 4100);
        elected(h, "n2", "B", 3, 2, 4300);
        CheckReport r = checker.check(h);
        assertThat(r.violations()).as(r.render()).isEmpty();
        assertThat(r.failoverMs().get(FaultKind.PAUSE_LEADER)).containsExactly(1300L);
    }

    @Test
    void aPausedMemberThatKeepsItsOldGrantIsNotOwnedAgain() {
        History h = clean();
        h.addFault(new FaultRecord(0, FaultKind.PAUSE_LEADER, "n2", T0 + 3000, T0 + 4000, true, "B", null));
        elected(h, "n1", "A", 2, 2, 4100);
        elected(h, "n2", "B", 3, 1, 4300); // the token it held before the pause: no new grant
        h.add(new Op(
                0, "n1", "A", Op.Kind.NOTE, Op.Outcome.OK, null, T0 + 9000, T0 + 9000, null, null, null, null, "end"));
        CheckReport r = checker.check(h);
        assertThat(r.violates(9)).as(r.render()).isTrue();
    }

    @Test
    void aLostMembersShardNeverOwnedAgainBreaksInvariantNine() {
        History h = clean();
        h.addFault(new FaultRecord(0, FaultKind.KILL_LEADER, "n2", T0 + 3000, T0 + 3000, true, "B", null));
        elected(h, "n1", "A", 2, 2, 4000);
        h.add(new Op(
                0, "n1", "A", Op.Kind.NOTE, Op.Outcome.OK, null, T0 + 9000, T0 + 9000, null, null, null, null, "end"));
        CheckReport r = checker.check(h);
        assertThat(r.violates(9)).as(r.render()).isTrue();
        assertThat(r.render()).contains("not every one of them was owned again");
    }

    @Test
    void aJoinNotBalancedInTimeBreaksInvariantNine() {
        History h = clean();
        h.addFault(new FaultRecord(0, FaultKind.MEMBER_JOIN, "n4", T0 + 3000, T0 + 3100, false, null, null));
        h.add(new Op(
                0,
                "n4",
                "D",
                Op.Kind.NOTE,
                Op.Outcome.OK,
                null,
                T0 + 3100,
                T0 + 3100,
                null,
                null,
                null,
                null,
                "started pid 4"));
        GroupRecords.Member d = new GroupRecords.Member("D", 4);
        h.addSnapshot(state(3200, Set.of(A, B, C, d), "A", "C", "B", "B")); // D owns nothing for ever
        h.add(new Op(
                0, "n1", "A", Op.Kind.NOTE, Op.Outcome.OK, null, T0 + 9000, T0 + 9000, null, null, null, null, "end"));
        CheckReport r = checker.check(h);
        assertThat(r.violates(9)).as(r.render()).isTrue();
        assertThat(r.render()).contains("not balanced within 3000 ms").contains("D=0");
    }

    @Test
    void aSettledGroupWithAnUnownedShardOrCountsTwoApartBreaksInvariantTen() {
        History h = clean();
        settled(h, 3000, 0, state(3000, Set.of(A, B, C), "A", null, "B", "B"));
        CheckReport r = checker.check(h);
        assertThat(r.violates(10)).as(r.render()).isTrue();
        assertThat(r.render()).contains("not balanced within one").contains("unowned [1]");

        History uneven = clean();
        settled(uneven, 3000, 0, state(3000, Set.of(A, B), "A", "A", "A", "B"));
        assertThat(checker.check(uneven).violates(10)).isTrue();
    }

    @Test
    void aGroupThatNeverSettledBreaksInvariantTen() {
        History h = clean();
        h.addSettle(new GroupRecords.Settle(
                T0 + 40_000,
                0,
                false,
                state(40_000, Set.of(A, B, C), "A", "C", "B", "B"),
                "n3 reports owning 0 shards, the database lists 1"));
        CheckReport r = checker.check(h);
        assertThat(r.violates(10)).isTrue();
        assertThat(r.render()).contains("did not settle after fault#0");
    }

    @Test
    void aJoinThatMovesMoreThanTheNewcomersShareOrToAnotherMemberBreaksInvariantEleven() {
        History h = clean();
        // from the settled A,C,B,B: D joins; three of four shards change owner (at most ceil(4/4) = 1 may)
        GroupRecords.Member d = new GroupRecords.Member("D", 4);
        settled(h, 5000, 1, state(5000, Set.of(A, B, C, d), "D", "B", "C", "B"));
        CheckReport r = checker.check(h);
        assertThat(r.violates(11)).as(r.render()).isTrue();
        assertThat(r.render()).contains("3 shards moved (at most 1 may)").contains("moved to another member");
    }

    @Test
    void aLeaveThatMovesAnotherMembersShardBreaksInvariantEleven() {
        History h = clean();
        // from the settled A,C,B,B: C leaves; its shard 1 may move, A's shard 0 may not
        settled(h, 5000, 1, state(5000, Set.of(A, B), "B", "A", "B", "A"));
        CheckReport r = checker.check(h);
        assertThat(r.violates(11)).as(r.render()).isTrue();
        assertThat(r.render()).contains("only C left, yet shards [0, 3] of other members moved");

        History fine = clean();
        settled(fine, 5000, 1, state(5000, Set.of(A, B), "A", "A", "B", "B"));
        assertThat(checker.check(fine).violations()).isEmpty();
    }

    @Test
    void aSettledGroupThatMovesWithoutAChangeOfMembersBreaksInvariantEleven() {
        History h = clean();
        settled(h, 5000, 1, state(5000, Set.of(A, B, C), "A", "C", "A", "B"));
        CheckReport r = checker.check(h);
        assertThat(r.violates(11)).as(r.render()).isTrue();
        assertThat(r.render()).contains("no member joined or left, yet shards [2] changed owner");
    }

    @Test
    void movesAcrossAPromotionOfTheDatabaseAreNotJudged() {
        History h = clean();
        h.addFault(new FaultRecord(0, FaultKind.FAILOVER_SYNC, "pg0->pg1", T0 + 3500, T0 + 4500, false, null, null));
        settled(h, 5000, 1, state(5000, Set.of(A, B, C), "A", "C", "A", "B"));
        CheckReport r = checker.check(h);
        assertThat(r.violates(11)).as(r.render()).isFalse();
        assertThat(r.groupSummary()).contains("1 across a promotion or an outage longer than the lease, not checked");
    }

    @Test
    void movesAcrossAnOutageLongerThanTheLeaseAreNotJudgedAndAcrossAShorterOneAre() {
        History h = clean();
        h.addFault(new FaultRecord(0, FaultKind.PG_PAUSE, "pg0", T0 + 3500, T0 + 4500, false, null, null));
        settled(h, 5000, 1, state(5000, Set.of(A, B, C), "A", "C", "A", "B"));
        assertThat(checker.check(h).violates(11)).isFalse();

        History shorter = clean();
        shorter.addFault(new FaultRecord(0, FaultKind.PG_PAUSE, "pg0", T0 + 3500, T0 + 3900, false, null, null));
        settled(shorter, 5000, 1, state(5000, Set.of(A, B, C), "A", "C", "A", "B"));
        CheckReport r = checker.check(shorter);
        assertThat(r.violates(11))
                .as("a pause shorter than the lease ends no grant")
                .isTrue();
    }

    @Test
    void severalChangesOfMembersBetweenSettledStatesAreNotJudged() {
        History h = clean();
        GroupRecords.Member d = new GroupRecords.Member("D", 4);
        h.addSnapshot(state(4000, Set.of(A, C, d), "A", "C", "D", "D"));
        settled(h, 5000, 1, state(5000, Set.of(A, C, d), "A", "C", "D", "D"));
        CheckReport r = checker.check(h);
        assertThat(r.violates(11)).as(r.render()).isFalse();
        assertThat(r.groupSummary())
                .contains(
                        "1 with several changes, 0 across a promotion or an outage longer than the lease, not checked");
    }

    // B renews shard 2 until +1800 (sent at +1798, deadline +2398; the database lists it until +2798 on its clock);
    // C acquires it at +1998..+2000 and owns it from +2000: 398 ms of overlap, which the database allows only when its
    // clock moved forward by at least 798 ms between B's renewal and C's acquire

    @Test
    void anOverlapAfterTheDatabaseClockSteppedForwardFarEnoughIsLeftToTheFence() {
        History h = clean(1800);
        elected(h, "n3", "C", 2, 2, 2000);
        h.addClockStep(T0 + 1900, 2_000_000, 0, 0, 0);
        h.addClockStep(T0 + 2100, -2_000_000, 0, 0, 0);
        assertThat(checker.check(h).violates(8)).isFalse();
    }

    @Test
    void aStepBackToTrueTimeExcusesAnOverlapOnlyWhenItLetTheDatabaseGrantTheShard() {
        for (long ms : new long[] {798, 796}) {
            History h = clean(1800);
            elected(h, "n3", "C", 2, 2, 2000);
            h.addClockStep(T0 + 1500, -ms * 1000, 0, 0, 0); // B's last renewal runs on the slow clock
            h.addClockStep(T0 + 1990, ms * 1000, 0, 0, 0);
            assertThat(checker.check(h).violates(8))
                    .as("a shift of %d ms (1 ms allowed for rounding)", ms)
                    .isEqualTo(ms == 796);
        }
    }

    @Test
    void stepsBeforeTheLastRenewalExplainNoOverlap() {
        History h = clean(1800);
        elected(h, "n3", "C", 2, 2, 2000);
        h.addClockStep(T0 + 1000, -1_500_000, 0, 0, 0);
        h.addClockStep(T0 + 1100, 1_500_000, 0, 0, 0); // B renews on the true clock again from +1200
        assertThat(checker.check(h).violates(8)).isTrue();
    }

    @Test
    void aStepBackAndForwardAgainAfterTheLastRenewalExplainsNoOverlap() {
        History h = clean(1800);
        elected(h, "n3", "C", 2, 2, 2000);
        h.addClockStep(T0 + 1850, -1_500_000, 0, 0, 0);
        h.addClockStep(T0 + 1900, 1_500_000, 0, 0, 0);
        assertThat(checker.check(h).violates(8)).isTrue();
    }

    @Test
    void aForwardStepUndoneBeforeTheNextTokenWasGrantedExplainsNoOverlap() {
        History h = clean(1800);
        h.addClockStep(T0 + 1850, 2_000_000, 0, 0, 0);
        h.addClockStep(T0 + 1900, -2_000_000, 0, 0, 0); // back before C's acquire (token 2, B's + 1) is sent
        elected(h, "n3", "C", 2, 2, 2000);
        assertThat(checker.check(h).violates(8)).isTrue();
    }

    @Test
    void aGrantInBetweenMadeWhileTheClockRanAheadExplainsALaterOverlap() {
        History h = clean(1800);
        h.addClockStep(T0 + 1850, 2_000_000, 0, 0, 0);
        elected(h, "n4", "D", 2, 2, 1860); // taken while B's grant looked expired
        released(h, "n4", "D", 2, 2, 1880);
        h.addClockStep(T0 + 1900, -2_000_000, 0, 0, 0);
        elected(h, "n3", "C", 2, 3, 2000); // token 3: granted against D's released row, not B's
        CheckReport r = checker.check(h);
        assertThat(r.violates(8)).as(r.render()).isFalse();
    }

    @Test
    void aBackwardStepDuringTheLastRenewalExplainsNoOverlap() {
        History h = clean(1800);
        h.addClockStep(T0 + 1799, -1_000_000, 0, 0, 0); // while B's last renewal (sent +1798, answered +1800) ran
        elected(h, "n3", "C", 2, 2, 2000);
        assertThat(checker.check(h).violates(8)).isTrue();
    }

    @Test
    void aStepAfterTheLaterGrantWasAnsweredExplainsNothing() {
        History h = clean(1800);
        h.add(op("n3", "C", Op.Kind.ACQUIRE, Op.Outcome.OK, 2, 2, 1990, 1992, 2590L, null, null));
        h.addClockStep(T0 + 1995, 2_000_000, 0, 0, 0);
        h.add(op("n3", "C", Op.Kind.ELECTED, Op.Outcome.OK, 2, 2, 2000, 2000, null, null, null));
        h.addClockStep(T0 + 2100, -2_000_000, 0, 0, 0);
        assertThat(checker.check(h).violates(8)).isTrue();
    }

    @Test
    void theRunsOtherLeasesAreNotShards() {
        History h = clean();
        h.add(new Op(
                0,
                "n1",
                "A",
                Op.Kind.NOTE,
                Op.Outcome.OK,
                null,
                T0 + 100,
                T0 + 100,
                null,
                null,
                null,
                null,
                "database-error",
                G));
        CheckReport r = checker.check(h);
        assertThat(r.violations()).isEmpty();
        assertThat(r.groupSummary()).contains("over 4 shard leases seen");
    }
}
