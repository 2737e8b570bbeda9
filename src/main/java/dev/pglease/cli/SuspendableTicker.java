package dev.pglease.cli;

import dev.pglease.Ticker;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Fault injection: a monotonic clock that does not advance during an announced suspend, as CLOCK_MONOTONIC does
 * not while a machine sleeps. The kit announces the suspend in the file before it stops the process, so the
 * clock already knows it when the process runs again. The announcement is on {@link System#nanoTime()}, which on
 * Linux is CLOCK_MONOTONIC, one clock for every process of the machine, and which the kit's skewed wall clocks
 * (libfaketime) leave alone: a node whose wall clock is minutes off still stands still at the announced moment.
 */
final class SuspendableTicker implements Ticker {
    private final Ticker base;
    private final double rate;
    /** Suspend time of earlier suspends, start of the latest, its duration (all ns): replaced as one. */
    private volatile long[] state = {0, Long.MAX_VALUE, 0};
    /** The highest reading handed out: a suspend noticed late stops the clock, never turns it back. */
    private final AtomicLong highest = new AtomicLong(Long.MIN_VALUE);

    SuspendableTicker(Ticker base, Path file, double rate) {
        this.base = base;
        this.rate = rate;
        Thread watcher = new Thread(() -> watch(file), "suspend-file-watcher");
        watcher.setDaemon(true);
        watcher.start();
    }

    private void watch(Path file) {
        while (true) {
            try {
                if (Files.exists(file)) {
                    String[] f = Files.readString(file).trim().split("\\s+");
                    long[] old = state;
                    if (f.length == 2 && Long.parseLong(f[0]) != old[1]) {
                        long earlier = old[0] + (old[1] == Long.MAX_VALUE ? 0 : old[2]);
                        state = new long[] {earlier, Long.parseLong(f[0]), Long.parseLong(f[1]) * 1_000_000L};
                    }
                }
                TimeUnit.MILLISECONDS.sleep(10);
            } catch (IOException | NumberFormatException e) {
                // a half-written file: read it again
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    @Override
    public long read() {
        long raw = base.read();
        long[] st = state;
        long now = System.nanoTime();
        long frozen = st[0] + (now - st[1] <= 0 ? 0 : Math.min(now - st[1], st[2]));
        return highest.accumulateAndGet(raw - (long) (frozen * rate), Math::max);
    }
}
