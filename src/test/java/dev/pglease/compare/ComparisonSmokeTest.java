package dev.pglease.compare;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Required;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * One trial per backend of the side-by-side comparison (kill -9, graceful handoff, pause past the lease) plus a
 * short steady-state sample; writes the page to target/comparison-smoke/. The full run is {@code
 * ./mvnw -Pcompare verify} (see {@link ComparisonFullTest}).
 */
class ComparisonSmokeTest {

    @Test
    @Timeout(150)
    void everyBackendElectsFailsOverAndHandsOff() throws Exception {
        Required.assume(
                EtcdCluster.available(),
                "the etcd binaries (" + EtcdCluster.BINARY + "; apt-get install etcd-server etcd-client)");
        Path out = Path.of(System.getProperty("pglease.buildDirectory", "target"), "comparison-smoke");
        Path work = Files.createTempDirectory("pglease-compare-smoke");
        Harness h = new Harness(work, Harness.Plan.smoke(), Timings.standard());
        try (h) {
            h.runAll();
        } finally {
            Report.write(h, out, out.resolve("comparison"), "./mvnw -Dtest=ComparisonSmokeTest test");
            System.err.println("[compare] smoke page: " + out.resolve("comparison.md"));
        }
        for (Lane l : h.lanes) {
            Results r = l.results;
            assertThat(r.kill).as(l.backend + " kill -9 failover").hasSize(1);
            assertThat(r.handoff).as(l.backend + " graceful handoff").hasSize(1);
            assertThat(r.pauses).as(l.backend + " pause trial").hasSize(1);
            assertThat(r.pauses.get(0).failoverMs())
                    .as(l.backend + " failover while the leader is paused")
                    .isPositive();
            assertThat(r.requestsPerSec)
                    .as(l.backend + " steady-state requests")
                    .isPositive();
            if (l.hasToken) {
                // a resource that checks the backend's token must not accept the resumed ex-leader's writes
                assertThat(r.pauses.get(0).acceptedAfterTakeover())
                        .as(l.backend + " stale writes accepted")
                        .isZero();
            }
        }
        assertThat(h.lanes).extracting(l -> l.backend).contains("pglease", "etcd", "zookeeper", "shedlock", "advisory");
        Os.deleteTree(work);
    }
}
