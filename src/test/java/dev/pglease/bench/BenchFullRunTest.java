package dev.pglease.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * The full benchmark run behind the {@code bench} profile: {@code ./mvnw -Pbench test}. Writes
 * {@code target/bench/performance-full.md} (the tables docs/performance.md quotes) and fails when a target was
 * missed; ratio targets are judged on operations timed side by side in the same rounds. About 20 minutes.
 */
@Tag("bench")
@EnabledIfSystemProperty(named = "pglease.bench", matches = "full")
class BenchFullRunTest {

    @Test
    void fullRun() throws Exception {
        Path out = Path.of(System.getProperty("pglease.buildDirectory", "target"), "bench");
        FullRun.Report report = FullRun.run(true, out);
        System.out.println(report.markdown());
        assertThat(report.markdown()).contains("## Targets");
        assertThat(report.missed())
                .as("targets missed (the whole report is above)")
                .isEmpty();
    }
}
