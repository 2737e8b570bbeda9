package dev.pglease.fault;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Required;
import dev.pglease.fault.kit.FakeTime;
import dev.pglease.fault.kit.Procs;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * A node JVM whose wall clock the kit moves with libfaketime sees the moved wall clock, keeps a real monotonic
 * clock, and idles like any other JVM: a skewed node must not turn into a busy process that loads the machine
 * (and so every other node's timing) for the rest of a run.
 */
class FakeTimeTest {

    private static final long SKEW_MS = 120_000;
    private static final long IDLE_MS = 3_000;

    @Test
    void aSkewedJvmSeesTheSkewKeepsARealMonotonicClockAndIdlesWithoutSpinning() {
        Required.assume(FakeTime.available(), "libfaketime (apt-get install faketime)");
        String[] cmd = FakeTime.javaCommand(SKEW_MS, Idle.class, Long.toString(IDLE_MS));
        long before = System.currentTimeMillis();
        String[] out = Procs.run(Duration.ofSeconds(60), cmd).trim().split("\\s+");
        long after = System.currentTimeMillis();
        long childWall = Long.parseLong(out[0]);
        long childMonotonicMs = Long.parseLong(out[1]);
        long childCpuMs = Long.parseLong(out[2]);

        assertThat(childWall)
                .as("the child's wall clock, %d ms ahead", SKEW_MS)
                .isBetween(before + SKEW_MS, after + SKEW_MS);
        assertThat(childMonotonicMs)
                .as("the child's monotonic time across a %d ms sleep", IDLE_MS)
                .isBetween(IDLE_MS, after - before);
        assertThat(childCpuMs)
                .as("CPU time of a JVM that slept %d ms under libfaketime", IDLE_MS)
                .isLessThan(IDLE_MS / 3);
    }

    /** Child: prints its wall clock, the monotonic time one sleep took, and its CPU time after the sleep. */
    public static final class Idle {
        public static void main(String[] args) throws InterruptedException {
            long wall = System.currentTimeMillis();
            long start = System.nanoTime();
            Thread.sleep(Long.parseLong(args[0]));
            long slept = (System.nanoTime() - start) / 1_000_000;
            long cpu = ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                            .getProcessCpuTime()
                    / 1_000_000;
            System.out.println(wall + " " + slept + " " + cpu);
        }
    }
}
