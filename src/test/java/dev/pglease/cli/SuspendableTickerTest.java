package dev.pglease.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Required;
import dev.pglease.Ticker;
import dev.pglease.fault.kit.FakeTime;
import dev.pglease.fault.kit.Procs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The node's simulated suspend (fault injection): the monotonic clock stands still while suspended, and never runs
 * backwards, even when the node notices the suspend late (a loaded machine: the suspend began before it read the
 * file), and it stands still at the moment the kit announced whatever the node's wall clock says.
 */
class SuspendableTickerTest {

    private static final long SKEW_MS = -120_000;

    @Test
    void aSuspendNoticedLateStopsTheClockWithoutTurningItBack(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("n1.suspend");
        Ticker real = System::nanoTime;
        SuspendableTicker ticker = new SuspendableTicker(real, file, 1.0);
        long before = ticker.read();
        // the suspend began 2 s ago and lasts 5 s: the node learns of it only now
        announce(file, System.nanoTime() - 2_000_000_000L, 5_000);
        long last = before;
        long deadline = System.nanoTime() + 500_000_000L;
        while (System.nanoTime() < deadline) {
            long now = ticker.read();
            assertThat(now).as("ticker reading after %d", last).isGreaterThanOrEqualTo(last);
            last = now;
            Thread.sleep(5);
        }
        assertThat(last - before)
                .as("the clock stood still once the suspend was noticed")
                .isLessThan(400_000_000L);
    }

    /**
     * A node the kit restarted with a skewed wall clock (libfaketime) reads the kit's announcement on a clock they
     * share: a node whose wall clock is two minutes behind must not take a suspend announced now for one two minutes
     * ahead, and stand still then while it runs (the group soak's late orphan: a member's lease loop slept through
     * its renewals, its clock frozen by a suspend of an earlier process on that slot).
     */
    @Test
    void aNodeWithASkewedWallClockStandsStillExactlyWhenTheSuspendWasAnnounced(@TempDir Path dir) throws Exception {
        Required.assume(FakeTime.available(), "libfaketime (apt-get install faketime)");
        Path file = dir.resolve("n1.suspend");
        long holdMs = 600;
        long start = System.nanoTime() + 2_500_000_000L; // after the child JVM started
        announce(file, start, holdMs);
        String[] cmd = FakeTime.javaCommand(
                SKEW_MS, Child.class, file.toString(), Long.toString(start + (holdMs + 1_000) * 1_000_000L));
        String[] out = Procs.run(Duration.ofSeconds(60), cmd).trim().split("\\s+");
        long realMs = Long.parseLong(out[0]);
        long tickerMs = Long.parseLong(out[1]);
        assertThat(realMs).as("the child ran across the suspend").isGreaterThan(holdMs + 1_000);
        assertThat(realMs - tickerMs)
                .as(
                        "how long the clock of a child %d ms behind stood still in %d ms (suspend of %d ms)",
                        -SKEW_MS, realMs, holdMs)
                .isBetween(holdMs - 50, holdMs + 50);
    }

    /** What the kit writes into a node's suspend file ({@code FaultCluster.suspend}). */
    private static void announce(Path file, long startNanos, long holdMs) throws IOException {
        Files.writeString(file, startNanos + " " + holdMs + "\n");
    }

    /** Child: runs a suspendable ticker until the given monotonic time; prints real and ticker time, in ms. */
    public static final class Child {
        public static void main(String[] args) throws InterruptedException {
            SuspendableTicker ticker = new SuspendableTicker(System::nanoTime, Path.of(args[0]), 1.0);
            long until = Long.parseLong(args[1]);
            long real0 = System.nanoTime();
            long ticker0 = ticker.read();
            while (System.nanoTime() < until) {
                ticker.read();
                Thread.sleep(5);
            }
            System.out.println((System.nanoTime() - real0) / 1_000_000 + " " + (ticker.read() - ticker0) / 1_000_000);
        }
    }
}
