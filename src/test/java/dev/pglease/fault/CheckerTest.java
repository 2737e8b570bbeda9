package dev.pglease.fault;

import static dev.pglease.fault.Op.Outcome.FAIL;
import static dev.pglease.fault.Op.Outcome.OK;
import static dev.pglease.fault.Op.Outcome.UNKNOWN;
import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The checker on hand-made histories: a clean one passes, each planted violation is named. */
class CheckerTest {
    private static final long T0 = 1_700_000_000_000L;
    private static final long DB0 = T0 * 1000;
    private final Checker checker = new Checker(new Checker.Config(1000, 200));

    /** Two leaders in turn, A then B after A is killed; writes, reads, DB rows all consistent. */
    private History clean() {
        History h = new History(T0);
        h.acquire("n1", "A", OK, 1L, T0 + 10, T0 + 15, T0 + 10 + 600);
        h.acquire("n2", "B", FAIL, null, T0 + 12, T0 + 16, T0 + 612);
        h.write("n1", "A", OK, 1, T0 + 100, T0 + 105, T0 + 610, 1L);
        h.renew("n1", "A", OK, 1, T0 + 200, T0 + 204, T0 + 800);
        h.write("n1", "A", OK, 1, T0 + 300, T0 + 305, T0 + 800, 2L);
        h.read("A", 1, T0 + 310, T0 + 312, DB0 + 12_000, DB0 + 1_204_000);
        h.addFault(new FaultRecord(0, FaultKind.KILL_LEADER, "n1", T0 + 400, T0 + 400, true, "A", 1L));
        h.acquire("n2", "B", UNKNOWN, null, T0 + 1000, T0 + 1100, T0 + 1600);
        h.acquire("n2", "B", OK, 2L, T0 + 1210, T0 + 1215, T0 + 1810);
        h.write("n2", "B", OK, 2, T0 + 1300, T0 + 1305, T0 + 1810, 3L);
        h.read("B", 2, T0 + 1400, T0 + 1401, DB0 + 1_212_000, DB0 + 2_212_000);
        h.setLeaseEvents(List.of(
                new DbRecords.LeaseEvent(1, "l", 1, "A", null, "acquired", DB0 + 12_000),
                new DbRecords.LeaseEvent(2, "l", 2, "B", "A", "taken_over", DB0 + 1_212_000)));
        h.setAccepts(List.of(
                new DbRecords.Accept(1, "l", 1, "A", 1, DB0 + 102_000),
                new DbRecords.Accept(2, "l", 1, "A", 2, DB0 + 302_000),
                new DbRecords.Accept(3, "l", 2, "B", 3, DB0 + 1_302_000)));
        return h;
    }

    @Test
    void cleanHistoryPasses() {
        CheckReport r = checker.check(clean());
        assertThat(r.violations()).as(r.render()).isEmpty();
        assertThat(r.lostAckedAcquires()).isZero();
        assertThat(r.failoverMs().get(FaultKind.KILL_LEADER)).containsExactly(815L);
        assertThat(r.table("t")).contains("kill -9 leader").contains("815 ms");
    }

    @Test
    void unknownOutcomesAndFailedOpsAreNotClaims() {
        History h = clean();
        // an unknown acquire by C with a token someone else holds is no violation: it may not have happened
        h.acquire("n3", "C", UNKNOWN, 2L, T0 + 1500, T0 + 1600, T0 + 2100);
        h.renew("n1", "A", FAIL, 1, T0 + 1500, T0 + 1501, T0 + 2100);
        assertThat(checker.check(h).violations()).isEmpty();
    }

    @Test
    void tokenGrantedToTwoHolders() {
        History h = clean();
        h.acquire("n3", "C", OK, 2L, T0 + 1500, T0 + 1502, T0 + 2100);
        CheckReport r = checker.check(h);
        assertThat(r.violates(1)).isTrue();
        assertThat(r.violations().get(0).invariant()).isIn(1, 2);
        assertThat(r.render())
                .contains("FIRST VIOLATION")
                .contains("token 2 granted to B")
                .contains("and to C")
                .contains("history around");
        assertThat(r.lostAckedAcquires()).isPositive();
    }

    @Test
    void tokenGrantedToTwoHoldersOnlyVisibleInTheDatabase() {
        History h = clean();
        List<DbRecords.LeaseEvent> ev = new ArrayList<>(h.leaseEvents());
        ev.add(new DbRecords.LeaseEvent(3, "l", 2, "C", "B", "taken_over", DB0 + 3_000_000));
        h.setLeaseEvents(ev);
        CheckReport r = checker.check(h);
        assertThat(r.violates(1)).isTrue();
        assertThat(r.render()).contains("evidence: event#3");
    }

    @Test
    void lowerTokenAfterACompletedAcquire() {
        History h = clean();
        h.acquire("n3", "C", OK, 0L, T0 + 2000, T0 + 2001, T0 + 2600);
        CheckReport r = checker.check(h);
        assertThat(r.violates(2)).isTrue();
        assertThat(r.render()).contains("completed before acquire");
    }

    @Test
    void concurrentAcquiresMayCompleteInAnyOrder() {
        History h = new History(T0);
        // overlapping intervals: token order is not constrained by real time
        h.acquire("n1", "A", OK, 2L, T0, T0 + 100, T0 + 600);
        h.acquire("n2", "B", OK, 1L, T0 + 50, T0 + 150, T0 + 650);
        CheckReport r = checker.check(h);
        assertThat(r.violates(2)).isFalse();
    }

    @Test
    void staleRenewAfterATakeoverIsANonMonotonicObservation() {
        History h = clean();
        h.renew("n1", "A", OK, 1, T0 + 1250, T0 + 1260, T0 + 1850);
        CheckReport r = checker.check(h);
        assertThat(r.violates(2)).isTrue();
        assertThat(r.render()).contains("the highest token decreased");
    }

    @Test
    void acceptLogGoingBackwards() {
        History h = clean();
        List<DbRecords.Accept> log = new ArrayList<>(h.accepts());
        log.add(new DbRecords.Accept(4, "l", 1, "A", 4, DB0 + 1_350_000));
        h.setAccepts(log);
        CheckReport r = checker.check(h);
        assertThat(r.violates(3)).isTrue();
        assertThat(r.violates(6)).isTrue(); // and it landed after token 2 was granted
        assertThat(r.render()).contains("accepted a write with token 1");
    }

    @Test
    void duplicateCounterValueIsALostUpdate() {
        History h = clean();
        List<DbRecords.Accept> log = new ArrayList<>(h.accepts());
        log.add(new DbRecords.Accept(4, "l", 2, "B", 3, DB0 + 1_350_000));
        h.setAccepts(log);
        assertThat(checker.check(h).violates(3)).isTrue();
    }

    @Test
    void writersOwnAcknowledgementsAreCheckedWhenThereIsNoLog() {
        History h = new History(T0);
        h.acquire("n1", "A", OK, 1L, T0, T0 + 5, T0 + 600);
        h.write("n1", "A", OK, 2, T0 + 10, T0 + 12, T0 + 600, 5L);
        h.write("n1", "A", OK, 1, T0 + 20, T0 + 22, T0 + 600, 6L);
        assertThat(checker.check(h).violates(3)).isTrue();
    }

    @Test
    void acknowledgedAcquireLostAfterACrash() {
        History h = clean();
        h.acquire("n3", "C", OK, 3L, T0 + 2000, T0 + 2002, T0 + 2600);
        // the database came back with token 2: the grant of 3 was acknowledged but not durable
        h.read("B", 2, T0 + 3000, T0 + 3001, DB0 + 1_212_000, DB0 + 3_000_000);
        CheckReport r = checker.check(h);
        assertThat(r.violates(4)).isTrue();
        assertThat(r.lostAckedAcquires()).isEqualTo(1);
        assertThat(r.render()).contains("an acknowledged grant was lost");
    }

    @Test
    void acknowledgedWriteMissingFromTheLog() {
        History h = clean();
        h.write("n2", "B", OK, 2, T0 + 1400, T0 + 1405, T0 + 1810, 4L);
        assertThat(checker.check(h).violates(4)).isTrue();
    }

    @Test
    void writeStartedAfterTheLocalDeadline() {
        History h = clean();
        h.write("n2", "B", FAIL, 2, T0 + 1900, T0 + 1905, T0 + 1810, null);
        CheckReport r = checker.check(h);
        assertThat(r.violates(5)).isTrue();
        assertThat(r.render()).contains("90 ms after its local deadline");
    }

    private static Op revoked(String node, String holder, long token, long at) {
        return new Op(0, node, holder, Op.Kind.REVOKED, OK, token, at, at, null, null, null, null, "deadline");
    }

    @Test
    void writeStartedAfterTheWriterReportedItsGrantRevoked() {
        History h = clean();
        h.add(revoked("n1", "A", 1, T0 + 350));
        h.write("n1", "A", FAIL, 1, T0 + 360, T0 + 370, T0 + 800, null); // the database refused it: still a breach
        CheckReport r = checker.check(h);
        assertThat(r.violates(5)).as(r.render()).isTrue();
        assertThat(r.render()).contains("started 10 ms after its node reported that grant revoked");
    }

    @Test
    void aRenewalAnsweredAfterAStepDownRestoresTheGrantForLaterWrites() {
        History h = clean();
        h.add(revoked("n1", "A", 1, T0 + 350));
        h.renew("n1", "A", OK, 1, T0 + 340, T0 + 355, T0 + 940);
        h.write("n1", "A", OK, 1, T0 + 360, T0 + 370, T0 + 940, null);
        assertThat(checker.check(h).violates(5)).isFalse();
    }

    @Test
    void overlappingGrantIntervalsOnTheDatabaseClock() {
        History h = clean();
        // A's lease was seen to run until +1.5 s, yet B got token 2 at +1.212 s
        h.read("A", 1, T0 + 900, T0 + 901, DB0 + 12_000, DB0 + 1_500_000);
        CheckReport r = checker.check(h);
        assertThat(r.violates(6)).isTrue();
        assertThat(r.render()).contains("overlaps the grant of token 1");
    }

    /**
     * After a failover to a synchronous standby A's renewal of its old-term token 1 is refused (lost), and A takes the
     * lease again at once in term 2 (token 2^32 + 1) while token 1 still had time left; or, in the planted variant,
     * another holder B takes it then.
     */
    private History regrantInANewTerm(String newHolder) {
        long newTerm = (1L << 32) + 1;
        History h = new History(T0);
        h.acquire("n1", "A", OK, 1L, T0, T0 + 5, T0 + 600);
        h.renew("n1", "A", FAIL, 1, T0 + 400, T0 + 405, T0 + 1000);
        h.acquire(newHolder.equals("A") ? "n1" : "n2", newHolder, OK, newTerm, T0 + 410, T0 + 415, T0 + 1010);
        h.setLeaseEvents(List.of(
                new DbRecords.LeaseEvent(1, "l", 1, "A", null, "acquired", DB0),
                new DbRecords.LeaseEvent(
                        2,
                        "l",
                        newTerm,
                        newHolder,
                        "A",
                        newHolder.equals("A") ? "acquired" : "taken_over",
                        DB0 + 410_000)));
        h.setLeaseVersions(List.of(
                new DbRecords.LeaseVersion(1, 1, "A", DB0 + 1_000_000, DB0),
                new DbRecords.LeaseVersion(2, newTerm, newHolder, DB0 + 1_410_000, DB0 + 410_000)));
        h.setAccepts(List.of(new DbRecords.Accept(1, "l", 1, "A", 1, DB0 + 100_000, DB0 + 101_000)));
        return h;
    }

    @Test
    void aHolderTakingItsOwnLeaseAgainInANewTermEndsItsOldGrantThere() {
        CheckReport r = checker.check(regrantInANewTerm("A"));
        assertThat(r.violates(6)).as(r.render()).isFalse();
    }

    @Test
    void anotherHolderTakingTheLeaseInANewTermWhileTheOldGrantRunsIsAnOverlap() {
        CheckReport r = checker.check(regrantInANewTerm("B"));
        assertThat(r.violates(6)).as(r.render()).isTrue();
        assertThat(r.render()).contains("overlaps the grant of token 1");
    }

    /**
     * An asynchronous standby promoted after B's takeover (token 2) and B's writes reached only the old primary: B
     * takes the lease again in the new term before any read of the promoted server shows the older row. Only the
     * promoted server's own records show that token 2 was never granted there.
     */
    @Test
    void anAcknowledgedGrantMissingFromThePromotedServersRecordsIsLost() {
        long newTerm = (1L << 32) + 1;
        History h = new History(T0);
        h.acquire("n1", "A", OK, 1L, T0 + 10, T0 + 15, T0 + 610);
        h.read("A", 1, T0 + 310, T0 + 312, DB0 + 12_000, DB0 + 1_204_000);
        h.addFault(new FaultRecord(0, FaultKind.KILL_LEADER, "n1", T0 + 400, T0 + 400, true, "A", 1L));
        h.acquire("n2", "B", OK, 2L, T0 + 1210, T0 + 1215, T0 + 1810);
        h.write("n2", "B", OK, 2, T0 + 1300, T0 + 1305, T0 + 1810, 2L);
        h.read("B", 2, T0 + 1400, T0 + 1401, DB0 + 1_212_000, DB0 + 2_500_000);
        h.acquire("n2", "B", OK, newTerm, T0 + 2000, T0 + 2005, T0 + 2600);
        h.write("n2", "B", OK, newTerm, T0 + 2100, T0 + 2105, T0 + 2600, 2L);
        h.setLeaseEvents(List.of(
                new DbRecords.LeaseEvent(1, "l", 1, "A", null, "acquired", DB0 + 12_000),
                new DbRecords.LeaseEvent(2, "l", newTerm, "B", "A", "taken_over", DB0 + 2_002_000)));
        h.setLeaseVersions(List.of(
                new DbRecords.LeaseVersion(1, 1, "A", DB0 + 1_012_000, DB0 + 12_000),
                new DbRecords.LeaseVersion(2, newTerm, "B", DB0 + 3_002_000, DB0 + 2_002_000)));
        h.setAccepts(List.of(new DbRecords.Accept(1, "l", newTerm, "B", 2, DB0 + 2_102_000, DB0 + 2_103_000)));
        CheckReport r = checker.check(h);
        assertThat(r.lostAckedAcquires()).as(r.render()).isEqualTo(1);
        assertThat(r.render()).contains("was acknowledged with token 2 ");
        LostGrants.assertOnlyUnreplicatedGrantsLost(r);
    }

    /**
     * The same without term tokens: the promoted server hands token 2 out again, to B again, before any read of it
     * shows the older row. Its records hold one grant of token 2 to B where B was acknowledged two.
     */
    @Test
    void anAcknowledgedGrantWhoseTokenAndHolderTheAsynchronousStandbyGrantedAgainIsLost() {
        History h = new History(T0);
        h.acquire("n1", "A", OK, 1L, T0 + 10, T0 + 15, T0 + 610);
        h.read("A", 1, T0 + 310, T0 + 312, DB0 + 12_000, DB0 + 1_204_000);
        h.addFault(new FaultRecord(0, FaultKind.KILL_LEADER, "n1", T0 + 400, T0 + 400, true, "A", 1L));
        h.acquire("n2", "B", OK, 2L, T0 + 1210, T0 + 1215, T0 + 1810);
        h.renew("n2", "B", OK, 2, T0 + 1400, T0 + 1404, T0 + 2000);
        h.renew("n2", "B", FAIL, 2, T0 + 1600, T0 + 1604, T0 + 2000);
        h.acquire("n2", "B", OK, 2L, T0 + 2000, T0 + 2005, T0 + 2600);
        h.read("B", 2, T0 + 2100, T0 + 2101, DB0 + 2_002_000, DB0 + 3_002_000);
        h.setLeaseEvents(List.of(
                new DbRecords.LeaseEvent(1, "l", 1, "A", null, "acquired", DB0 + 12_000),
                new DbRecords.LeaseEvent(2, "l", 2, "B", "A", "taken_over", DB0 + 2_002_000)));
        h.setLeaseVersions(List.of(
                new DbRecords.LeaseVersion(1, 1, "A", DB0 + 1_012_000, DB0 + 12_000),
                new DbRecords.LeaseVersion(2, 2, "B", DB0 + 3_002_000, DB0 + 2_002_000),
                new DbRecords.LeaseVersion(3, 2, "B", DB0 + 3_202_000, DB0 + 2_202_000)));
        h.setAccepts(List.of());
        CheckReport r = checker.check(h);
        assertThat(r.violates(4)).as(r.render()).isTrue();
        assertThat(r.lostAckedAcquires()).as(r.render()).isEqualTo(1);
        assertThat(r.render()).contains("acquire #2 was acknowledged with token 2 ");
    }

    @Test
    void writeAcceptedBeforeItsGrant() {
        History h = clean();
        List<DbRecords.Accept> log = new ArrayList<>(h.accepts());
        log.set(2, new DbRecords.Accept(3, "l", 2, "B", 3, DB0 + 1_100_000));
        h.setAccepts(log);
        assertThat(checker.check(h).violates(6)).isTrue();
    }

    /**
     * A hands the lease to B after the database clock stepped back 5 s: every row written after the step carries
     * timestamps 5 s lower, so without the step A's write looks committed after B's grant.
     */
    private History handoverAcrossABackwardStep(boolean lateWriteOfA) {
        History h = new History(T0);
        h.acquire("n1", "A", OK, 1L, T0, T0 + 5, T0 + 600);
        h.renew("n1", "A", OK, 1, T0 + 500, T0 + 505, T0 + 1100);
        h.write("n1", "A", OK, 1, T0 + 600, T0 + 605, T0 + 1100, 1L);
        h.addClockStep(T0 + 650, -5_000_000, 1, 1, 2);
        h.renew("n1", "A", OK, 1, T0 + 700, T0 + 705, T0 + 1300);
        h.add(new Op(0, "n1", "A", Op.Kind.RELEASE, OK, 1L, T0 + 800, T0 + 805, null, null, null, null, null));
        h.acquire("n2", "B", OK, 2L, T0 + 900, T0 + 905, T0 + 1500);
        long back = DB0 - 5_000_000;
        h.setLeaseEvents(List.of(
                new DbRecords.LeaseEvent(1, "l", 1, "A", null, "acquired", DB0),
                new DbRecords.LeaseEvent(2, "l", 1, null, "A", "released", back + 800_000),
                new DbRecords.LeaseEvent(3, "l", 2, "B", null, "acquired", back + 900_000)));
        h.setLeaseVersions(List.of(
                new DbRecords.LeaseVersion(1, 1, "A", DB0 + 1_000_000, DB0),
                new DbRecords.LeaseVersion(2, 1, "A", DB0 + 1_500_000, DB0 + 500_000),
                new DbRecords.LeaseVersion(3, 1, "A", back + 1_700_000, back + 700_000),
                new DbRecords.LeaseVersion(4, 1, null, back + 800_000, back + 800_000),
                new DbRecords.LeaseVersion(5, 2, "B", back + 1_900_000, back + 900_000)));
        List<DbRecords.Accept> log = new ArrayList<>();
        log.add(new DbRecords.Accept(1, "l", 1, "A", 1, DB0 + 600_000, DB0 + 601_000));
        if (lateWriteOfA) {
            h.write("n1", "A", OK, 1, T0 + 640, T0 + 955, T0 + 1100, 2L);
            log.add(new DbRecords.Accept(2, "l", 1, "A", 2, back + 950_000, back + 951_000));
        } else {
            h.write("n2", "B", OK, 2, T0 + 1000, T0 + 1005, T0 + 1500, 2L);
            log.add(new DbRecords.Accept(2, "l", 2, "B", 2, back + 1_000_000, back + 1_001_000));
        }
        h.setAccepts(log);
        return h;
    }

    @Test
    void aBackwardStepOfTheDatabaseClockIsReadOnTheMonotonicClock() {
        CheckReport r = checker.check(handoverAcrossABackwardStep(false));
        assertThat(r.violations()).as(r.render()).isEmpty();
    }

    @Test
    void withoutTheRecordedStepTheSameRowsLookLikeALateCommit() {
        History recorded = handoverAcrossABackwardStep(false);
        History unaware = new History(T0);
        recorded.ops().forEach(unaware::add);
        unaware.setLeaseEvents(recorded.leaseEvents());
        unaware.setLeaseVersions(recorded.leaseVersions());
        unaware.setAccepts(recorded.accepts());
        CheckReport r = checker.check(unaware);
        assertThat(r.violates(6)).as(r.render()).isTrue();
        assertThat(r.render()).contains("after token 2 was granted");
    }

    @Test
    void aWriteThatCommitsAfterTheSuccessorsGrantIsReportedAcrossAClockStep() {
        CheckReport r = checker.check(handoverAcrossABackwardStep(true));
        assertThat(r.violates(6)).as(r.render()).isTrue();
        assertThat(r.render()).contains("write with token 1 committed at").contains("after token 2 was granted");
    }

    @Test
    void clockStepsMustComeInTheOrderOfTheRowsTheyFollow() {
        History h = new History(T0);
        h.addClockStep(T0, 1_000_000, 5, 5, 5);
        h.addClockStep(T0 + 1, -1_000_000, 4, 5, 5);
        org.assertj.core.api.Assertions.assertThatThrownBy(() -> checker.check(h))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("clock steps out of order");
    }

    @Test
    void slowFailoverBreaksLiveness() {
        History h = new History(T0);
        h.acquire("n1", "A", OK, 1L, T0, T0 + 5, T0 + 600);
        h.addFault(new FaultRecord(0, FaultKind.PAUSE_LEADER, "n1", T0 + 100, T0 + 3000, true, "A", 1L));
        h.acquire("n2", "B", OK, 2L, T0 + 2500, T0 + 2505, T0 + 3100);
        CheckReport r = checker.check(h);
        assertThat(r.violates(7)).isTrue();
        assertThat(r.render()).contains("bound 1450 ms");
    }

    @Test
    void measuredSchedulingLagWidensOnlyItsOwnWindowAndIsCapped() {
        History h = new History(T0);
        h.acquire("n1", "A", OK, 1L, T0, T0 + 5, T0 + 600);
        h.addFault(new FaultRecord(0, FaultKind.KILL_LEADER, "n1", T0 + 100, T0 + 100, true, "A", 1L));
        h.addLag(T0 + 900, 400); // the machine stalled 400 ms during the window
        h.addLag(T0 + 9000, 5000); // outside it: no effect
        h.acquire("n2", "B", OK, 2L, T0 + 1600, T0 + 1800, T0 + 2400);
        CheckReport r = checker.check(h);
        assertThat(r.violations()).as(r.render()).isEmpty();
        assertThat(r.windows()).singleElement().satisfies(w -> {
            assertThat(w.failoverMs()).isEqualTo(1700);
            assertThat(w.lagMs()).isEqualTo(400);
            assertThat(w.boundMs()).isEqualTo(1850);
        });
        h.addLag(T0 + 1000, 3000); // a huge stall adds at most the cap: 1450 + 1000
        CheckReport capped = checker.check(h);
        assertThat(capped.windows().get(0).boundMs()).isEqualTo(2450);
    }

    @Test
    void aPausedLeaderThatReacquiresIsNotAFailover() {
        History h = new History(T0);
        h.acquire("n1", "A", OK, 1L, T0, T0 + 5, T0 + 600);
        h.addFault(new FaultRecord(0, FaultKind.PAUSE_LEADER, "n1", T0 + 100, T0 + 1500, true, "A", 1L));
        h.acquire("n1", "A", OK, 2L, T0 + 1510, T0 + 1515, T0 + 2100); // the old leader wins again: not a failover
        h.acquire("n2", "B", OK, 3L, T0 + 3000, T0 + 3005, T0 + 3600);
        CheckReport r = checker.check(h);
        assertThat(r.violates(7)).as(r.render()).isTrue();
        assertThat(r.render())
                .contains("the first grant to another holder, #2 (B), came 2905 ms after the fault > bound 1450 ms");
    }

    @Test
    void aWindowOpensAtTheLeadersLastRenewalWhenTheFaultTookEffectLate() {
        History h = new History(T0);
        h.acquire("n1", "A", OK, 1L, T0, T0 + 5, T0 + 600);
        h.addFault(new FaultRecord(0, FaultKind.NETNS_PARTITION, "netns:n1", T0 + 100, T0 + 3000, true, "A", 1L));
        // the database still renewed A's grant 500 ms after the fault was recorded
        h.setLeaseVersions(List.of(
                new DbRecords.LeaseVersion(1, 1, "A", DB0 + 1_200_000, DB0),
                new DbRecords.LeaseVersion(2, 1, "A", DB0 + 1_800_000, DB0 + 600_000)));
        h.acquire("n2", "B", OK, 2L, T0 + 1900, T0 + 1950, T0 + 2500);
        CheckReport r = checker.check(h);
        assertThat(r.violations()).as(r.render()).isEmpty(); // 1850 ms after the fault, 1350 ms after the renewal
        assertThat(r.windows()).singleElement().satisfies(w -> {
            assertThat(w.lateMs()).isEqualTo(500);
            assertThat(w.failoverMs()).isEqualTo(1350);
        });
    }

    @Test
    void aWindowDoesNotMoveToGrantsTheLeaderTookAgainAfterAnotherHolderLed() {
        History h = new History(T0);
        h.acquire("n1", "A", OK, 1L, T0, T0 + 5, T0 + 600);
        h.addFault(new FaultRecord(0, FaultKind.PAUSE_LEADER, "n1", T0 + 100, T0 + 1800, true, "A", 1L));
        h.acquire("n2", "B", OK, 2L, T0 + 1300, T0 + 1305, T0 + 1900);
        h.addFault(new FaultRecord(0, FaultKind.STOP_LEADER, "n2", T0 + 2300, T0 + 2300, true, "B", 2L));
        h.acquire("n1", "A", OK, 3L, T0 + 2330, T0 + 2335, T0 + 2930); // A, awake again, succeeds B
        h.setLeaseVersions(List.of(
                new DbRecords.LeaseVersion(1, 1, "A", DB0 + 1_000_000, DB0),
                new DbRecords.LeaseVersion(2, 2, "B", DB0 + 2_302_000, DB0 + 1_302_000),
                new DbRecords.LeaseVersion(3, 2, null, DB0 + 2_310_000, DB0 + 2_310_000),
                new DbRecords.LeaseVersion(4, 3, "A", DB0 + 3_332_000, DB0 + 2_332_000),
                new DbRecords.LeaseVersion(5, 3, "A", DB0 + 3_600_000, DB0 + 2_600_000)));
        CheckReport r = checker.check(h);
        assertThat(r.violations()).as(r.render()).isEmpty();
        assertThat(r.windows())
                .hasSize(2)
                .allSatisfy(w -> assertThat(w.measured()).as(r.windowTable()).isTrue());
        assertThat(r.windows().get(0).lateMs()).isZero();
        assertThat(r.windows().get(0).failoverMs()).isEqualTo(1205);
        assertThat(r.windows().get(1).failoverMs()).isEqualTo(35);
    }

    @Test
    void aWindowAfterTheDatabaseClockRanAheadIsNotHeldToTheBound() {
        // the database clock ran 3 s ahead from +100 to +400 ms: A's renewal then wrote an expiry 3 s later in real
        // time,
        // and the database rightly waits for it after A is killed at +600 ms
        History h = new History(T0);
        h.acquire("n1", "A", OK, 1L, T0, T0 + 5, T0 + 600);
        h.addClockStep(T0 + 100, 3_000_000, 1, 0, 1);
        h.renew("n1", "A", OK, 1, T0 + 250, T0 + 255, T0 + 850);
        h.addClockStep(T0 + 400, -3_000_000, 1, 0, 2);
        h.addFault(new FaultRecord(0, FaultKind.DB_CLOCK_STEP, "pg0", T0 + 100, T0 + 400, false, null, null));
        h.addFault(new FaultRecord(0, FaultKind.KILL_LEADER, "n1", T0 + 600, T0 + 600, true, "A", 1L));
        h.acquire("n2", "B", OK, 2L, T0 + 4300, T0 + 4305, T0 + 4900);
        CheckReport r = checker.check(h);
        assertThat(r.violates(7)).as(r.render()).isFalse();
        assertThat(r.windowTable()).contains("the database clock ran 3000 ms ahead until 200 ms before the fault");
    }

    @Test
    void unmeasuredWindowsSayWhy() {
        History h = new History(T0);
        h.acquire("n1", "A", OK, 1L, T0, T0 + 5, T0 + 600);
        h.addFault(new FaultRecord(0, FaultKind.KILL_LEADER, "n1", T0 + 100, T0 + 100, true, "A", 1L));
        h.addFault(new FaultRecord(0, FaultKind.PG_PAUSE, "postgres", T0 + 300, T0 + 5000, false, null, null));
        h.acquire("n2", "B", OK, 2L, T0 + 5100, T0 + 5105, T0 + 5600);
        CheckReport r = checker.check(h);
        assertThat(r.measuredShare()).isZero();
        assertThat(r.windowTable()).contains("fault#1 (pause Postgres cluster) injected 200 ms into the window");
    }

    @Test
    void aWriteRefusedByTheLocalCheckWasNotStarted() {
        History refused = clean();
        refused.add(new Op(
                0,
                "n2",
                "B",
                Op.Kind.WRITE,
                FAIL,
                2L,
                T0 + 1900,
                T0 + 1900,
                T0 + 1810L,
                null,
                null,
                null,
                "rejected: LEASE_LOST"));
        assertThat(checker.check(refused).violates(5)).isFalse();
    }

    @Test
    void aGrantNobodySawEndIsClosedAtTheLastExpiryTheDatabaseGaveIt() {
        History h = clean();
        // no release, no monitor read of the end: only the row versions say token 1 was renewed until +1.6 s
        h.setLeaseVersions(List.of(
                new DbRecords.LeaseVersion(1, 1, "A", DB0 + 1_012_000, DB0 + 12_000),
                new DbRecords.LeaseVersion(2, 1, "A", DB0 + 1_600_000, DB0 + 600_000),
                new DbRecords.LeaseVersion(3, 2, "B", DB0 + 2_212_000, DB0 + 1_212_000)));
        CheckReport r = checker.check(h);
        assertThat(r.violates(6)).as(r.render()).isTrue();
        assertThat(r.render()).contains("overlaps the grant of token 1");
    }

    @Test
    void aFencedWriteThatCommitsAfterTheSuccessorsGrant() {
        History h = clean();
        List<DbRecords.Accept> log = new ArrayList<>(h.accepts());
        // inserted while token 1 was valid, committed after token 2 was granted at +1.212 s
        log.set(1, new DbRecords.Accept(2, "l", 1, "A", 2, DB0 + 302_000, DB0 + 1_250_000L));
        h.setAccepts(log);
        CheckReport r = checker.check(h);
        assertThat(r.violates(6)).as(r.render()).isTrue();
        assertThat(r.render()).contains("committed at");
    }

    @Test
    void noFailoverAtAllBreaksLiveness() {
        History h = new History(T0);
        h.acquire("n1", "A", OK, 1L, T0, T0 + 5, T0 + 600);
        h.addFault(new FaultRecord(0, FaultKind.KILL_LEADER, "n1", T0 + 100, T0 + 100, true, "A", 1L));
        h.read(null, 1, T0 + 5000, T0 + 5001, null, null);
        assertThat(checker.check(h).violates(7)).isTrue();
    }

    @Test
    void overlappingFaultsAreNotMeasured() {
        History h = new History(T0);
        h.acquire("n1", "A", OK, 1L, T0, T0 + 5, T0 + 600);
        h.addFault(new FaultRecord(0, FaultKind.KILL_LEADER, "n1", T0 + 100, T0 + 100, true, "A", 1L));
        h.addFault(new FaultRecord(0, FaultKind.PG_PAUSE, "postgres", T0 + 200, T0 + 5000, false, null, null));
        h.acquire("n2", "B", OK, 2L, T0 + 5100, T0 + 5105, T0 + 5600);
        CheckReport r = checker.check(h);
        assertThat(r.violates(7)).isFalse();
        assertThat(r.failoverMs()).isEmpty();
    }
}
