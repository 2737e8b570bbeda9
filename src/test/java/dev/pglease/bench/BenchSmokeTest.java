package dev.pglease.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Runs every benchmark (JMH and the scenario harness) with tiny sizes, so that the benchmarks keep building and
 * working. It checks that each produced figures, not how fast they are: the figures are in docs/performance.md,
 * from the full run ({@code scripts/bench.sh} or {@code mvn -Pbench test}).
 */
@Tag("bench-smoke")
class BenchSmokeTest {

    @Test
    void everyBenchmarkProducesFigures() throws Exception {
        Path out = Path.of(System.getProperty("pglease.buildDirectory", "target"), "bench");
        FullRun.Report report = FullRun.run(false, out);
        Map<String, Double> f = report.figures();

        assertThat(report.jmh())
                .extracting(JmhLauncher.Row::benchmark)
                .containsExactlyInAnyOrder(
                        "acquireDenied",
                        "acquireGranted",
                        "fencedWrite",
                        "forwardFenceWrite",
                        "plainWrite",
                        "release",
                        "renew",
                        "shedlockLockUnlock",
                        "springIntegrationLockUnlock");
        for (JmhLauncher.Row r : report.jmh()) {
            assertThat(r.samples()).as(r.benchmark()).isPositive();
            assertThat(r.p50()).as(r.benchmark()).isPositive();
        }
        assertThat(f.get("handoff.db.p50")).as("handoff, database clock").isPositive();
        assertThat(f.get("handoff.client.p50")).as("handoff, client").isPositive();
        assertThat(f.get("failover.1000.p50")).as("failover gap").isNotNull().isFinite();
        assertThat(f.get("failover.1000.kill.p50")).as("kill to grant").isPositive();
        assertThat(f.get("standbys.2.acquirePerLease"))
                .as("standby acquire rate")
                .isPositive();
        assertThat(f.get("standbys.2.observerAttempts"))
                .as("observer counted the attempts")
                .isPositive();
        assertThat(f.get("library.leaders")).as("every lease of the node led").isEqualTo(100.0);
        assertThat(f.get("library.rowsPerStatement"))
                .as("renew statements carried rows")
                .isPositive();
        assertThat(f.get("library.peakThreadsAdded"))
                .as("the scale table's peak is its scenario's: one PgLease's threads (7) and a few more, not the "
                        + "peak of the earlier scenarios' PgLeases")
                .isBetween(0.0, 14.0);
        assertThat(f.get("scale.one.1000.rate")).as("batch renewals, one node").isPositive();
        assertThat(f.get("scale.nodes.2.rate")).as("batch renewals, two nodes").isPositive();
        assertThat(f.get("soak.renewals"))
                .as("renewals during the run at 500 ms leases")
                .isPositive();
        assertThat(f.get("soak.leaderChanges"))
                .as("leader changes at 500 ms leases")
                .isNotNull();
        assertThat(f.get("side.fenced.p50")).as("interleaved fenced write").isPositive();
        assertThat(f.get("side.shedlock.p50"))
                .as("interleaved ShedLock round trip")
                .isPositive();
        assertThat(f.get("protect.protected100.p50"))
                .as("a fenced transaction of 100 rows into a protected table")
                .isPositive();
        assertThat(report.markdown()).contains("## Targets").contains("pg_prepared_statements");
    }
}
