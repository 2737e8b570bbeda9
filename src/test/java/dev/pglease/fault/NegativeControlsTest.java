package dev.pglease.fault;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.Required;
import dev.pglease.fault.kit.FaultCluster;
import dev.pglease.fault.kit.NodeProcess;
import dev.pglease.fault.kit.PgServer;
import dev.pglease.fault.kit.RefNode;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The checker is trusted only because it fails where it must. Each control plants a real violation in real
 * processes against a real Postgres (pglease node processes with a fault-injection switch wherever the violation
 * can be planted in pglease) and asserts the exact set of safety invariants (1-6) it breaks, or that invariant 7
 * fires for a planted slow failover. Twins where pglease keeps every invariant under the same fault run with -Psoak.
 */
class NegativeControlsTest {

    @BeforeAll
    static void postgres() {
        Required.assume(PgServer.available(), "the system PostgreSQL 15 binaries (postgresql-15, run as postgres)");
    }

    private static void report(String title, CheckReport r) {
        System.out.println("== " + title + " (" + FaultCluster.loadAverage() + ")");
        System.out.println(r.table(title));
        System.out.println(r.render());
    }

    /** The safety invariants (1-6) the report names. Liveness (7) depends on the machine's load and is not planted. */
    private static Set<Integer> safetyViolated(CheckReport r) {
        Set<Integer> s = new TreeSet<>(r.countsByInvariant().keySet());
        s.remove(7);
        return s;
    }

    /** Pause the leader several times inside one of its write transactions, each time longer than the lease. */
    private static CheckReport pauseLeaders(FaultCluster c, int rounds, long holdMs) {
        for (int i = 0; i < rounds; i++) {
            c.superviseNodes();
            NodeProcess l = c.awaitLeader(60_000);
            assertThat(l).as("a leader").isNotNull();
            PgServer.sleep(200);
            assertThat(c.stallInFencedTransaction(l, holdMs))
                    .as("pause %d inside a write", i + 1)
                    .isNotNull();
            PgServer.sleep(800);
        }
        return c.finish();
    }

    @Test
    void unfencedPgleaseWriterUnderAPauseBreaksTokenOrderAndCommitsAfterTheSuccessorsGrant() {
        // pglease nodes whose writer checks its local deadline, reads the lease row without locking it, works 300 ms
        // inside the transaction, then writes: a pause during that work lets the successor in first
        FaultCluster.Options o = new FaultCluster.Options()
                .nodes(2)
                .timing(1000, 600, 200)
                .writeHold(300)
                .extraNodeArgs("--unfenced");
        try (FaultCluster c = FaultCluster.start(o)) {
            CheckReport r = pauseLeaders(c, 4, 2_500);
            report("negative control: unfenced pglease writer under a pause", r);
            assertThat(safetyViolated(r)).as(r.render()).containsExactly(3, 6);
            assertThat(r.render()).contains("resource accepted a write with token");
        }
    }

    @Test
    void writerThatIgnoresItsDeadlineIsCaughtByInvariantFive() {
        // a pause longer than the renew deadline but shorter than the lease: the database still lists the holder, so
        // only the writer's own deadline forbids the write it starts when it wakes up. Each pause lands inside one of
        // the
        // writer's transactions, and the node's first renewal after it waits 400 ms behind the kit's hold of the lease
        // row: without that hold the writer finishes the open write and starts its next one after its renewal has moved
        // the deadline on, and nothing is planted (a pause at any other moment is caught only if the writer wins the
        // race with its own renewal).
        FaultCluster.Options o = new FaultCluster.Options()
                .nodes(2)
                .timing(3000, 1000, 250)
                .writeHold(100)
                .leaseRowHeldAfterPause(400)
                .extraNodeArgs("--ignore-deadline");
        try (FaultCluster c = FaultCluster.start(o)) {
            for (int i = 0; i < 3; i++) {
                NodeProcess l = c.awaitLeader(60_000);
                assertThat(l).as("a leader").isNotNull();
                PgServer.sleep(300);
                FaultRecord f = c.stallInFencedTransaction(l, 1_800);
                assertThat(f).as("pause %d injected", i + 1).isNotNull();
                PgServer.sleep(3_500);
            }
            CheckReport r = c.finish();
            report("negative control: pglease writer ignoring its local deadline", r);
            assertThat(safetyViolated(r)).as(r.render()).containsExactly(5);
            assertThat(r.render()).contains("after its local deadline");
            assertThat(r.history().faults()).hasSize(3);
            // within 2 s of the pause's end (the next pause starts 3.8 s later at the earliest): the client-side
            // deadline may have aborted the paused transaction, and the writer's next write then waits for a new
            // connection, which takes longer on a loaded machine
            List<String> planted = r.history().faults().stream()
                    .filter(f -> r.violations().stream()
                            .anyMatch(v ->
                                    v.invariant() == 5 && v.atMs() >= f.startMs() && v.atMs() <= f.endMs() + 2_000))
                    .map(f -> f.render(r.history().t0()))
                    .toList();
            // now and then a pause plants nothing: the node's first renewal after it is not held back by the kit's
            // hold of the lease row and moves the deadline on before the next write (seen for one pause of three,
            // in a pause that began as the writer opened its transaction; why the hold, queued behind the writer's
            // FOR SHARE, did not go first is not established). Two of three planted and caught show that the checker
            // catches what is planted.
            assertThat(planted)
                    .as("pauses followed by a write started after the local deadline%n%s", r.render())
                    .hasSizeGreaterThanOrEqualTo(2);
        }
    }

    @Test
    void grantTakenOverAValidUnobservedGrantIsCaughtByInvariantSix() {
        // n1 is pglease; n2 takes the lease over 4 s after it first saw n1's grant, although that grant is valid. The
        // monitor does not read the row meanwhile and n1 never releases: only the database's record of the expiry it
        // gave n1 shows it.
        FaultCluster.Options o = new FaultCluster.Options()
                .nodes(2)
                .timing(2000, 1200, 250)
                .nodeMain(1, RefNode.class.getName())
                .nodeArgs(1, "--steal-after", "4000ms");
        try (FaultCluster c = FaultCluster.start(o)) {
            assertThat(c.awaitLeader(60_000)).as("n1 leads").isEqualTo(c.node(0));
            c.monitor().suspend(true);
            PgServer.sleep(6_000);
            c.monitor().suspend(false);
            CheckReport r = c.finish();
            report("negative control: a grant while another's unobserved grant was valid", r);
            assertThat(safetyViolated(r)).as(r.render()).containsExactly(6);
            assertThat(r.render()).contains("last expiry the database gave it");
        }
    }

    @Test
    void standbyThatWaitsOutAnExtraLeaseIsCaughtByInvariantSeven() {
        // n2 campaigns only once the lease has been free for 4 s: kill -9 of n1 is followed by a failover of about
        // expiry + 4 s, above the bound of 2 s + 0.25 s + 0.25 s + at most 1 s of measured scheduling lag
        FaultCluster.Options o =
                new FaultCluster.Options().nodes(2).timing(2000, 1200, 250).nodeArgs(1, "--campaign-delay", "4000ms");
        try (FaultCluster c = FaultCluster.start(o)) {
            NodeProcess l = c.awaitLeader(60_000);
            assertThat(l).as("n1 leads").isEqualTo(c.node(0));
            PgServer.sleep(500);
            c.kill(l, FaultKind.KILL_LEADER);
            assertThat(c.awaitNewLeader(c.monitor().token(), 20_000))
                    .as("n2 takes over in the end")
                    .isPositive();
            PgServer.sleep(500);
            CheckReport r = c.finish();
            report("negative control: a standby that waits out an extra lease", r);
            assertThat(r.violates(7)).as(r.render()).isTrue();
            assertThat(safetyViolated(r)).as(r.render()).isEmpty();
            assertThat(r.windows())
                    .singleElement()
                    .satisfies(w -> assertThat(w.measured()).isTrue());
        }
    }

    @Test
    @Tag("soak") // the randomized runs cover this fault against pglease; the twin runs with -Psoak
    void fencedPgleaseWriterUnderTheSamePauseIsSafe() {
        FaultCluster.Options o =
                new FaultCluster.Options().nodes(2).timing(1000, 600, 200).writeHold(300);
        try (FaultCluster c = FaultCluster.start(o)) {
            CheckReport r = pauseLeaders(c, 4, 2_500);
            report("twin: pglease fenced writer under the same pauses", r);
            assertThat(safetyViolated(r)).as(r.render()).isEmpty();
            assertThat(r.history().accepts()).isNotEmpty();
        }
    }

    private static CheckReport crashAfterTakeovers(FaultCluster c) {
        for (int round = 0; round < 3; round++) {
            c.superviseNodes();
            NodeProcess l = c.awaitLeader(60_000);
            assertThat(l).isNotNull();
            Long token = c.monitor().token();
            c.kill(l, FaultKind.KILL_LEADER);
            assertThat(c.awaitNewLeader(token, 30_000))
                    .as("a standby takes over")
                    .isPositive();
            PgServer.sleep(30);
            c.pgCrash(200); // the acknowledged takeover was only in wal_buffers
            c.primary().awaitReady(true, java.time.Duration.ofSeconds(30));
            PgServer.sleep(1500);
            c.restart(l);
            PgServer.sleep(1000);
        }
        return c.finish();
    }

    private static FaultCluster.Options lazyWal(FaultCluster.Options o) {
        return o.pg("wal_writer_delay", "'10s'")
                .pg("wal_writer_flush_after", "'1GB'")
                .pg("bgwriter_lru_maxpages", "0")
                .pg("autovacuum", "off")
                .pg("checkpoint_timeout", "'1h'");
    }

    @Test
    void synchronousCommitOffPlusACrashLosesAnAcknowledgedAcquire() {
        // Planted in the reference candidate: pglease raises synchronous_commit to on for every lease statement and
        // fenced transaction, so it has no switch that acknowledges a grant before it is durable.
        FaultCluster.Options o = lazyWal(new FaultCluster.Options()
                .nodes(2)
                .nodeMain(RefNode.class.getName())
                .timing(1000, 600, 200)
                .work("none")
                .extraNodeArgs("--synchronous-commit", "off"));
        try (FaultCluster c = FaultCluster.start(o)) {
            CheckReport r = crashAfterTakeovers(c);
            report("negative control: synchronous_commit=off plus a crash", r);
            // a lost acknowledged acquire (4) whose token is handed out again to a later acquire (2); when the later
            // acquire goes to another holder, also a token granted twice (1)
            assertThat(safetyViolated(r)).as(r.render()).contains(2, 4).isSubsetOf(1, 2, 4, 6);
            assertThat(r.lostAckedAcquires()).isPositive();
        }
    }

    @Test
    @Tag("soak") // the randomized runs cover this fault against pglease; the twin runs with -Psoak
    void pgleaseSurvivesTheSameCrashes() {
        // the same server settings: pglease raises synchronous_commit to on for its own sessions
        FaultCluster.Options o = lazyWal(
                new FaultCluster.Options().nodes(2).timing(1000, 600, 200).pg("synchronous_commit", "off"));
        try (FaultCluster c = FaultCluster.start(o)) {
            CheckReport r = crashAfterTakeovers(c);
            report("twin: pglease under synchronous_commit=off plus crashes", r);
            assertThat(safetyViolated(r)).as(r.render()).isEmpty();
        }
    }

    /**
     * Kill the leader while the standby is cut off (replication blackholed), let a new leader be acknowledged by the
     * primary only, kill the primary and promote the standby.
     */
    private static volatile boolean takeoverSeen;

    private static CheckReport promoteAfterALostTakeover(FaultCluster c) {
        NodeProcess l = c.awaitLeader(30_000);
        assertThat(l).isNotNull();
        PgServer.sleep(1500); // the standby replays the current grant
        Long token = c.monitor().token();
        c.replicationProxy().blackhole(true); // the standby hears nothing more
        c.kill(l, FaultKind.KILL_LEADER);
        long seen = c.awaitNewLeader(token, 30_000);
        takeoverSeen = seen > 0;
        PgServer.sleep(seen > 0 ? 500 : 0); // with an asynchronous standby: acknowledged, a few writes too
        c.failover(false);
        PgServer.sleep(500);
        c.restart(l);
        PgServer.sleep(6_000); // the nodes find the promoted server and campaign again
        return c.finish();
    }

    @Test
    void asynchronousPromotionWithoutTermTokensReissuesATokenAndIsCaught() {
        // test-only: tokens are the plain counter of one server, as before term tokens (or on a server hiding its
        // timeline)
        FaultCluster.Options o = new FaultCluster.Options()
                .nodes(3)
                .timing(1000, 600, 200)
                .replication(FaultCluster.Replication.ASYNC)
                .termsOff();
        try (FaultCluster c = FaultCluster.start(o)) {
            CheckReport r = promoteAfterALostTakeover(c);
            report("negative control: asynchronous standby promoted, term tokens off", r);
            assertThat(takeoverSeen)
                    .as("the takeover was acknowledged before the promotion")
                    .isTrue();
            // the takeover and its writes were acknowledged by the old primary only: the acquire is lost (4), its token
            // is handed out again (1, 2) and the resource's writes with it vanish (4)
            assertThat(safetyViolated(r)).as(r.render()).contains(4).isSubsetOf(1, 2, 3, 4, 6);
            assertThat(r.lostAckedAcquires()).as(r.render()).isPositive();
            assertThat(LostGrants.tokensGrantedTwice(r)).as(r.render()).isNotEmpty();
            assertThatThrownBy(() -> LostGrants.assertOnlyUnreplicatedGrantsLost(r))
                    .isInstanceOf(AssertionError.class);
        }
    }

    @Test
    void asynchronousPromotionWithTermTokensLosesOnlyTheUnreplicatedGrant() {
        FaultCluster.Options o =
                new FaultCluster.Options().nodes(3).timing(1000, 600, 200).replication(FaultCluster.Replication.ASYNC);
        try (FaultCluster c = FaultCluster.start(o)) {
            CheckReport r = promoteAfterALostTakeover(c);
            report("asynchronous standby promoted, term tokens", r);
            // no token granted twice, no grant below an earlier one, no stale write accepted by a forward fence
            LostGrants.assertOnlyUnreplicatedGrantsLost(r);
            long newTerm = 1L << 32; // the promoted standby is on timeline 2
            assertThat(c.monitor().token())
                    .as("a leader in the new term")
                    .isNotNull()
                    .isGreaterThan(newTerm);
        }
    }

    @Test
    @Tag("soak") // the randomized runs cover this fault against pglease; the twin runs with -Psoak
    void synchronousPromotionKeepsEveryInvariant() {
        FaultCluster.Options o =
                new FaultCluster.Options().nodes(3).timing(1000, 600, 200).replication(FaultCluster.Replication.SYNC);
        try (FaultCluster c = FaultCluster.start(o)) {
            CheckReport r = promoteAfterALostTakeover(c);
            report("synchronous standby promoted", r);
            assertThat(safetyViolated(r)).as(r.render()).isEmpty();
            assertThat(r.lostAckedAcquires()).isZero();
        }
    }
}
