package dev.pglease.fault;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.pglease.fault.kit.FaultCluster;
import dev.pglease.fault.kit.NodeProcess;
import dev.pglease.fault.kit.PgServer;
import dev.pglease.fault.kit.RefNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The checker is trusted only because it fails where it must. Each control plants a real violation with real
 * processes and a real Postgres, and asserts that the checker names it; each has a twin where pglease, under the
 * same fault, keeps every invariant.
 */
class NegativeControlsTest {

  @BeforeAll
  static void postgres() {
    assumeTrue(PgServer.available(), "system PostgreSQL 15 binaries not usable here");
  }

  private static void report(String title, CheckReport r) {
    System.out.println("== " + title);
    System.out.println(r.table(title));
    System.out.println(r.render());
  }

  /** Pause the leader while it is between its validity check and its write, several times. */
  private static CheckReport pauseLeadersMidWrite(FaultCluster c, int rounds) {
    for (int i = 0; i < rounds; i++) {
      c.superviseNodes();
      NodeProcess l = c.awaitLeader(60_000);
      assertThat(l).as("a leader").isNotNull();
      PgServer.sleep(200);
      c.pause(l, 2_500, FaultKind.PAUSE_LEADER);
      PgServer.sleep(800);
    }
    return c.finish();
  }

  @Test
  void unfencedWriterUnderAPauseIsCaught() {
    // writers that check only their local deadline, then work 300 ms, then write without the lease check
    FaultCluster.Options o = new FaultCluster.Options().nodes(2).nodeMain(RefNode.class.getName())
        .timing(1000, 600, 200).extraNodeArgs("--unfenced", "--write-delay", "300ms");
    try (FaultCluster c = FaultCluster.start(o)) {
      CheckReport r = pauseLeadersMidWrite(c, 4);
      report("negative control: unfenced writer under a pause", r);
      assertThat(r.violates(3)).as(r.render()).isTrue();
      assertThat(r.render()).contains("FIRST VIOLATION").contains("resource accepted a write with token");
    }
  }

  @Test
  @Tag("soak") // the randomized runs cover this fault against pglease; the twin runs with -Psoak
  void fencedPgleaseWriterUnderTheSamePauseIsSafe() {
    assumeTrue(dev.pglease.fault.kit.Schemas.nodeCommandAvailable());
    FaultCluster.Options o = new FaultCluster.Options().nodes(2).timing(1000, 600, 200);
    try (FaultCluster c = FaultCluster.start(o)) {
      CheckReport r = pauseLeadersMidWrite(c, 4);
      report("twin: pglease fenced writer under the same pauses", r);
      assertThat(r.violations()).as(r.render()).isEmpty();
      assertThat(r.history().accepts()).isNotEmpty();
    }
  }

  @Test
  void synchronousCommitOffPlusACrashLosesAnAcknowledgedAcquire() {
    // commits acknowledged before their WAL left shared memory: keep the WAL writer and bgwriter quiet
    FaultCluster.Options o = new FaultCluster.Options().nodes(2).nodeMain(RefNode.class.getName())
        .timing(1000, 600, 200).work("none").extraNodeArgs("--synchronous-commit", "off")
        .pg("wal_writer_delay", "'10s'").pg("wal_writer_flush_after", "'1GB'").pg("bgwriter_lru_maxpages", "0")
        .pg("autovacuum", "off").pg("checkpoint_timeout", "'1h'");
    try (FaultCluster c = FaultCluster.start(o)) {
      for (int round = 0; round < 3; round++) {
        c.superviseNodes();
        NodeProcess l = c.awaitLeader(60_000);
        assertThat(l).isNotNull();
        Long token = c.monitor().token();
        c.kill(l, FaultKind.KILL_LEADER);
        assertThat(c.awaitNewLeader(token, 30_000)).as("a standby takes over").isPositive();
        PgServer.sleep(30);
        c.pgCrash(200); // the acknowledged takeover was only in wal_buffers
        c.primary().awaitReady(true, java.time.Duration.ofSeconds(30));
        PgServer.sleep(1500);
        c.restart(l);
        PgServer.sleep(1000);
      }
      CheckReport r = c.finish();
      report("negative control: synchronous_commit=off plus a crash", r);
      assertThat(r.violates(4)).as(r.render()).isTrue();
      assertThat(r.lostAckedAcquires()).isPositive();
    }
  }

  @Test
  @Tag("soak") // the randomized runs cover this fault against pglease; the twin runs with -Psoak
  void pgleaseSurvivesTheSameCrashes() {
    assumeTrue(dev.pglease.fault.kit.Schemas.nodeCommandAvailable());
    // the same server settings: pglease raises synchronous_commit to on for its own sessions
    FaultCluster.Options o = new FaultCluster.Options().nodes(2).timing(1000, 600, 200)
        .pg("synchronous_commit", "off").pg("wal_writer_delay", "'10s'").pg("wal_writer_flush_after", "'1GB'")
        .pg("bgwriter_lru_maxpages", "0").pg("autovacuum", "off").pg("checkpoint_timeout", "'1h'");
    try (FaultCluster c = FaultCluster.start(o)) {
      for (int round = 0; round < 3; round++) {
        c.superviseNodes();
        NodeProcess l = c.awaitLeader(60_000);
        assertThat(l).isNotNull();
        Long token = c.monitor().token();
        c.kill(l, FaultKind.KILL_LEADER);
        assertThat(c.awaitNewLeader(token, 30_000)).isPositive();
        PgServer.sleep(30);
        c.pgCrash(200);
        c.primary().awaitReady(true, java.time.Duration.ofSeconds(30));
        PgServer.sleep(1500);
        c.restart(l);
        PgServer.sleep(1000);
      }
      CheckReport r = c.finish();
      report("twin: pglease under synchronous_commit=off plus crashes", r);
      assertThat(r.violations()).as(r.render()).isEmpty();
    }
  }

  /**
   * Kill the leader while the standby is cut off (paused), let a new leader be acknowledged by the primary only,
   * kill the primary and promote the standby.
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
    // test-only: tokens are the plain counter of one server, as before term tokens (or on a server hiding its timeline)
    FaultCluster.Options o = new FaultCluster.Options().nodes(3).timing(1000, 600, 200)
        .replication(FaultCluster.Replication.ASYNC).termsOff();
    try (FaultCluster c = FaultCluster.start(o)) {
      CheckReport r = promoteAfterALostTakeover(c);
      report("negative control: asynchronous standby promoted, term tokens off", r);
      assertThat(r.valid()).as("the checker must catch the lost grant").isFalse();
      assertThat(r.violates(1) || r.violates(4)).as(r.render()).isTrue();
      if (takeoverSeen) {
        // the takeover was acknowledged by the old primary only: its token is handed out again
        assertThat(r.lostAckedAcquires()).as(r.render()).isPositive();
        // ... and that is more than the lost grant itself: its token is acknowledged again after the promotion
        assertThat(LostGrants.tokensGrantedTwice(r)).as(r.render()).isNotEmpty();
        assertThatThrownBy(() -> LostGrants.assertOnlyUnreplicatedGrantsLost(r)).isInstanceOf(AssertionError.class);
      }
    }
  }

  @Test
  void asynchronousPromotionWithTermTokensLosesOnlyTheUnreplicatedGrant() {
    FaultCluster.Options o = new FaultCluster.Options().nodes(3).timing(1000, 600, 200)
        .replication(FaultCluster.Replication.ASYNC);
    try (FaultCluster c = FaultCluster.start(o)) {
      CheckReport r = promoteAfterALostTakeover(c);
      report("asynchronous standby promoted, term tokens", r);
      // no token granted twice, no grant below an earlier one, no stale write accepted by a forward fence
      LostGrants.assertOnlyUnreplicatedGrantsLost(r);
      long newTerm = 1L << 32; // the promoted standby is on timeline 2
      assertThat(c.monitor().token()).as("a leader in the new term").isNotNull().isGreaterThan(newTerm);
    }
  }

  @Test
  @Tag("soak") // the randomized runs cover this fault against pglease; the twin runs with -Psoak
  void synchronousPromotionKeepsEveryInvariant() {
    FaultCluster.Options o = new FaultCluster.Options().nodes(3).timing(1000, 600, 200)
        .replication(FaultCluster.Replication.SYNC);
    try (FaultCluster c = FaultCluster.start(o)) {
      CheckReport r = promoteAfterALostTakeover(c);
      report("synchronous standby promoted", r);
      assertThat(r.violations()).as(r.render()).isEmpty();
      assertThat(r.lostAckedAcquires()).isZero();
    }
  }
}
