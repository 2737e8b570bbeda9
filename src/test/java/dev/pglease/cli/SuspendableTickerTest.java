package dev.pglease.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Ticker;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The node's simulated suspend (fault injection): the monotonic clock stands still while suspended, and never runs
 * backwards, even when the node notices the suspend late (a loaded machine: the suspend began before it read the
 * file).
 */
class SuspendableTickerTest {

    @Test
    void aSuspendNoticedLateStopsTheClockWithoutTurningItBack(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("n1.suspend");
        Ticker real = System::nanoTime;
        SuspendableTicker ticker = new SuspendableTicker(real, file, 1.0);
        long before = ticker.read();
        // the suspend began 2 s ago and lasts 5 s: the node learns of it only now
        Files.writeString(file, (System.currentTimeMillis() - 2_000) + " 5000\n");
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
}
