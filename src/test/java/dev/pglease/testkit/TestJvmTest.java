package dev.pglease.testkit;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.management.ManagementFactory;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The JVMs of the tests keep their performance counters in memory, not in a file under /tmp: the JVM writes that file
 * at each safepoint, and on a busy disk one write can stall every thread of the JVM for a second (a group of 1 s
 * leases then loses every shard at once).
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
