package dev.pglease.fault;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Required;
import dev.pglease.fault.kit.FaultCluster;
import dev.pglease.fault.kit.NetNs;
import dev.pglease.fault.kit.PgServer;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The short seeded randomized run with fast failover: two of the three nodes run with {@code --fast-failover}, one
 * without, so takeovers go between both modes; every invariant must still hold. Replay a seed with
 * {@code -Dpglease.fault.seed=N}. Runs with the soak ({@code ./mvnw -Psoak verify}) to keep the default build short.
 */
@Tag("soak")
class FastFailoverFaultRunTest {
    @Test
    void randomizedRunWithFastFailoverKeepsEveryInvariant() {
        Required.assume(PgServer.available(), "the system PostgreSQL 15 binaries (postgresql-15, run as postgres)");
        long seed = RandomRun.seed();
        long budgetMs = Long.getLong("pglease.fault.fastMs", 60_000);
        int faults = Integer.getInteger("pglease.fault.fastFaults", 40);
        FaultCluster.Options o = new FaultCluster.Options()
                .nodes(3)
                .replication(FaultCluster.Replication.SYNC)
                .netnsForFirstNode(NetNs.available())
                .nodeArgs(0, "--fast-failover")
                .nodeArgs(1, "--fast-failover");
        try (FaultCluster c = FaultCluster.start(o)) {
            RandomRun run = new RandomRun(c, new RandomRun.Plan(seed, faults, budgetMs));
            CheckReport r = run.run();
            String table = r.table("fast-failover fault run, seed " + seed + ", "
                    + c.nodes().size() + " nodes (n1, n2 with --fast-failover)\ntiming: " + c.describeTiming());
            System.out.println(table);
            System.out.println(r.render());
            assertThat(r.violations()).as("seed " + seed + "\n" + r.render()).isEmpty();
            assertThat(r.lostAckedAcquires()).isZero();
            assertThat(run.injected()).isGreaterThanOrEqualTo(8);
        }
    }
}
