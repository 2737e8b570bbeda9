package dev.pglease.compare;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Required;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The full side-by-side comparison; writes docs/comparison.md and docs/comparison/*.svg. Run with
 * {@code ./mvnw -Pcompare verify} or {@code scripts/compare.sh} (about 10 minutes on two cores).
 */
@Tag("comparison-full")
class ComparisonFullTest {
    static final String COMMAND = "./mvnw -Pcompare verify";

    @Test
    @Timeout(1800)
    void fullComparison() throws Exception {
        Required.assume(
                EtcdCluster.available(),
                "the etcd binaries (" + EtcdCluster.BINARY + "; apt-get install etcd-server etcd-client)");
        Path docs = Path.of(System.getProperty("basedir", ".")).toAbsolutePath().resolve("docs");
        Path work = Files.createTempDirectory("pglease-compare-full");
        Harness h = new Harness(work, Harness.Plan.full(), Timings.standard());
        try (h) {
            h.runAll();
        } finally {
            Report.write(h, docs, docs.resolve("comparison"), COMMAND);
        }
        for (Lane l : h.lanes) {
            assertThat(l.results.kill).as(l.backend + " kill -9 trials").isNotEmpty();
            if (l.hasToken) {
                assertThat(l.results.pauses)
                        .as(l.backend + " stale writes accepted despite the token")
                        .allSatisfy(p -> assertThat(p.acceptedAfterTakeover()).isZero());
            }
        }
        Os.deleteTree(work);
    }
}
