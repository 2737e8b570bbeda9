package dev.pglease.internal.election;

import dev.pglease.Ticker;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A monotonic clock that moves only when a test says so, and a wall clock beside it that moves with it, unless the
 * test stops the ticker alone (as a suspended machine would) or moves the wall clock alone.
 */
final class FakeTicker implements Ticker, InstantSource {

    private final AtomicLong nanos;
    private final AtomicLong wallNanos = new AtomicLong(1_767_225_600_000_000_000L);

    FakeTicker() {
        this(1_000_000_000L);
    }

    /** A ticker whose monotonic reading starts at {@code startNanos}: any value, as {@code System.nanoTime()}'s. */
    FakeTicker(long startNanos) {
        nanos = new AtomicLong(startNanos);
    }

    @Override
    public long read() {
        return nanos.get();
    }

    @Override
    public Instant instant() {
        long n = wallNanos.get();
        return Instant.ofEpochSecond(Math.floorDiv(n, 1_000_000_000L), Math.floorMod(n, 1_000_000_000L));
    }

    void advance(Duration d) {
        nanos.addAndGet(d.toNanos());
        wallNanos.addAndGet(d.toNanos());
    }

    void advanceMillis(long millis) {
        advance(Duration.ofMillis(millis));
    }

    /** Only the wall clock moves: the machine was suspended (the monotonic clock stood still) or the clock stepped. */
    void advanceWallOnly(Duration d) {
        wallNanos.addAndGet(d.toNanos());
    }
}
