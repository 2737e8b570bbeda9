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
 * The long seeded randomized run over a lease group (soak): at least 1,000 faults of every kind of the group mix
 * (joins and leaves included) against a group of 64 shards over three to five members, at the 1 s / 600 ms / 200 ms
 * timings, with a synchronous standby. Run it with {@code scripts/soak.sh groups} or
 * {@code ./mvnw -Psoak -Dtest=LongGroupFaultRunTest test}. Properties: pglease.fault.seed,
 * pglease.fault.groupFaults (1000), pglease.fault.groupMs (time budget, 120 min), pglease.fault.groupSlots (5),
 * pglease.fault.groupShards (64). The table is printed and written to target/fault-logs/group-run-table.txt.
 */
@Tag("soak")
class LongGroupFaultRunTest {
    @Test
    void longRandomizedGroupRunKeepsEveryShardAndGroupInvariant() throws Exception {
        Required.assume(PgServer.available(), "the system PostgreSQL 15 binaries (postgresql-15, run as postgres)");
        long seed = RandomRun.seed();
        int faults = Integer.getInteger("pglease.fault.groupFaults", 1000);
        long budgetMs = Long.getLong("pglease.fault.groupMs", 120 * 60_000L);
        int slots = Integer.getInteger("pglease.fault.groupSlots", 5);
        int shards = Integer.getInteger("pglease.fault.groupShards", 64);
        FaultCluster.Options o = new FaultCluster.Options()
                .nodes(slots)
                .group(shards, 3)
                .timing(1000, 600, 200)
                .workInterval(100)
                .writeHold(20)
                .replication(FaultCluster.Replication.SYNC)
                .netnsForFirstNode(NetNs.available());
        long started = System.currentTimeMillis();
        try (FaultCluster c = FaultCluster.start(o)) {
            GroupRun run = new GroupRun(c, new GroupRun.Plan(seed, faults, budgetMs));
            CheckReport r = run.run();
            long minutes = (System.currentTimeMillis() - started) / 60_000;
            java.util.List<Long> settles = new java.util.ArrayList<>(run.settleMs());
            java.util.Collections.sort(settles);
            String table = r.table("long group fault run, seed " + seed + ", " + run.injected() + " faults, "
                    + minutes + " min\ntiming: " + c.describeTiming() + "\nload at the end: "
                    + FaultCluster.loadAverage() + "\nsettle waits after the failover wait: p50 "
                    + (settles.isEmpty() ? "-" : settles.get(settles.size() / 2)) + " ms, max "
                    + (settles.isEmpty() ? "-" : settles.get(settles.size() - 1)) + " ms over " + settles.size());
            System.out.println(table);
            System.out.println(r.render());
            Path out = Path.of(
                    System.getProperty("pglease.buildDirectory", "target"), "fault-logs", "group-run-table.txt");
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
