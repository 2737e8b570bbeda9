package dev.pglease.testkit;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.management.ManagementFactory;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The JVMs of the tests keep their performance counters in memory, not in a file under /tmp that the JVM writes while
 * its threads wait at a safepoint: a write that waits for a busy disk pauses the whole JVM (a known cause of pauses
 * under heavy write-back), and a group of 1 s leases loses every shard in such a pause.
 */
class TestJvmTest {

    private static final String NO_PERF_FILE = "-XX:+PerfDisableSharedMem";

    @Test
    void theTestJvmKeepsNoPerformanceCounterFile() {
        assertThat(ManagementFactory.getRuntimeMXBean().getInputArguments()).contains(NO_PERF_FILE);
    }

    @Test
    void theJvmsTheTestsStartKeepNoPerformanceCounterFileEither() {
        assertThat(JavaProcess.command(List.of(), "Main", List.of())).contains(NO_PERF_FILE);
    }
}
