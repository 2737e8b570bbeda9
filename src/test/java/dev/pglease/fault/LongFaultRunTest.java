package dev.pglease.fault;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Required;
import dev.pglease.fault.kit.FaultCluster;
import dev.pglease.fault.kit.NetNs;
import dev.pglease.fault.kit.PgServer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The long seeded randomized run (soak): at least 1,000 faults of every kind against four pglease nodes with a
 * synchronous standby. Run it with {@code scripts/soak.sh} or {@code ./mvnw -Psoak -Dtest=LongFaultRunTest test}.
 * Properties: pglease.fault.seed, pglease.fault.longFaults (1000), pglease.fault.longMs (time budget, 80 min),
 * pglease.fault.nodes (4). The table is printed and written to target/fault-logs/long-run-table.txt.
 */
@Tag("soak")
class LongFaultRunTest {
    @Test
    void longRandomizedRunKeepsEveryInvariant() throws Exception {
        Required.assume(PgServer.available(), "the system PostgreSQL 15 binaries (postgresql-15, run as postgres)");
        long seed = RandomRun.seed();
        int faults = Integer.getInteger("pglease.fault.longFaults", 1000);
        long budgetMs = Long.getLong("pglease.fault.longMs", 80 * 60_000L);
        int nodes = Integer.getInteger("pglease.fault.nodes", 4);
        FaultCluster.Options o = new FaultCluster.Options()
                .nodes(nodes)
                .replication(FaultCluster.Replication.SYNC)
                .netnsForFirstNode(NetNs.available());
        long started = System.currentTimeMillis();
        try (FaultCluster c = FaultCluster.start(o)) {
            RandomRun run = new RandomRun(c, new RandomRun.Plan(seed, faults, budgetMs));
            CheckReport r = run.run();
            long minutes = (System.currentTimeMillis() - started) / 60_000;
            String table = r.table("long fault run, seed " + seed + ", " + nodes + " nodes, " + run.injected()
                    + " faults, " + minutes + " min\ntiming: " + c.describeTiming() + "\nload at the end: "
                    + FaultCluster.loadAverage());
            System.out.println(table);
            System.out.println(r.render());
            Path out =
                    Path.of(System.getProperty("pglease.buildDirectory", "target"), "fault-logs", "long-run-table.txt");
            Files.createDirectories(out.getParent());
            Files.writeString(out, table + "\n" + r.render() + "\nhistory: " + c.dumpHistory() + "\n");
            assertThat(r.violations()).as("seed " + seed + "\n" + r.render()).isEmpty();
            assertThat(r.lostAckedAcquires()).isZero();
            assertThat(run.injected())
                    .as("faults injected within the time budget")
                    .isGreaterThanOrEqualTo(faults);
            assertThat(run.notInjected())
                    .as("kinds never injected, with the reason")
                    .isEmpty();
            assertThat(r.measuredShare()).as(r.windowTable()).isGreaterThanOrEqualTo(0.9);
        }
    }
}
