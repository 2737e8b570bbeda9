package dev.pglease.cli;

import dev.pglease.Leadership;
import dev.pglease.Ticker;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * This process's own record of its local deadline per token: the ticker reading before the last successful
 * acquire or renew statement was sent, plus the renew deadline. Kept apart from the library's state so that the
 * reported deadline is evidence of its own, not derived from {@link Leadership#remaining()}.
 */
final class Deadlines {
    private final Ticker ticker;
    private final long renewDeadlineNanos;
    private final double rate;
    private final Map<Long, Long> byToken = new ConcurrentHashMap<>();

    Deadlines(Ticker ticker, Duration renewDeadline, double rate) {
        this.ticker = ticker;
        this.renewDeadlineNanos = renewDeadline.toNanos();
        this.rate = rate;
    }

    /** The node's monotonic ticker reading (never a clock compared with the database's). */
    long tick() {
        return ticker.read();
    }

    void answered(long token, Duration latency) {
        long sent = ticker.read() - latency.toNanos();
        byToken.merge(token, sent + renewDeadlineNanos, (a, b) -> b - a > 0 ? b : a);
    }

    /** The deadline for {@code token} as a wall-clock time, given the wall time and ticker reading of now. */
    Long wallDeadline(long token, long wallNow, long tickNow) {
        Long d = byToken.get(token);
        if (d == null) {
            return null;
        }
        return wallNow + Math.floorDiv((long) ((d - tickNow) / rate), 1_000_000L);
    }
}
