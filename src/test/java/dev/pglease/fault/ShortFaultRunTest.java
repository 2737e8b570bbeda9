package dev.pglease.fault;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.pglease.fault.kit.FaultCluster;
import dev.pglease.fault.kit.NetNs;
import dev.pglease.fault.kit.PgServer;
import org.junit.jupiter.api.Test;

/**
 * The short seeded randomized run of the default build: every fault kind at least once against three pglease
 * nodes, about two minutes, then the checker. Replay a seed with {@code -Dpglease.fault.seed=N}.
 */
class ShortFaultRunTest {
  @Test
  void shortRandomizedRunKeepsEveryInvariant() {
    assumeTrue(PgServer.available(), "system PostgreSQL 15 binaries not usable here");
    long seed = RandomRun.seed();
    long budgetMs = Long.getLong("pglease.fault.shortMs", 90_000);
    int faults = Integer.getInteger("pglease.fault.shortFaults", 60);
    FaultCluster.Options o = new FaultCluster.Options().nodes(3)
        .replication(FaultCluster.Replication.SYNC).netnsForFirstNode(NetNs.available());
    try (FaultCluster c = FaultCluster.start(o)) {
      RandomRun run = new RandomRun(c, new RandomRun.Plan(seed, faults, budgetMs));
      CheckReport r = run.run();
      String table = r.table("short fault run, seed " + seed + ", " + c.nodes().size() + " nodes\ntiming: "
          + c.describeTiming());
      System.out.println(table);
      System.out.println(r.render());
      assertThat(r.violations()).as("seed " + seed + "\n" + r.render()).isEmpty();
      assertThat(r.lostAckedAcquires()).isZero();
      assertThat(run.injected()).isGreaterThanOrEqualTo(12);
      assertThat(r.faultsByKind().size()).as("fault kinds exercised").isGreaterThanOrEqualTo(8);
    }
  }
}
