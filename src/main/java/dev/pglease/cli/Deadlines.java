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
    /** By lease name and token (tokens of different leases, e.g. the shards of a group, may be equal). */
    private final Map<String, Long> byGrant = new ConcurrentHashMap<>();

    Deadlines(Ticker ticker, Duration renewDeadline, double rate) {
        this.ticker = ticker;
        this.renewDeadlineNanos = renewDeadline.toNanos();
        this.rate = rate;
    }

    /** The node's monotonic ticker reading (never a clock compared with the database's). */
    long tick() {
        return ticker.read();
    }

    void answered(String lease, long token, Duration latency) {
        long sent = ticker.read() - latency.toNanos();
        byGrant.merge(key(lease, token), sent + renewDeadlineNanos, (a, b) -> b - a > 0 ? b : a);
    }

    /** The deadline for {@code token} of {@code lease} as a wall-clock time, given the wall time and ticker of now. */
    Long wallDeadline(String lease, long token, long wallNow, long tickNow) {
        Long d = byGrant.get(key(lease, token));
        if (d == null) {
            return null;
        }
        return wallNow + Math.floorDiv((long) ((d - tickNow) / rate), 1_000_000L);
    }

    private static String key(String lease, long token) {
        return token + " " + lease;
    }
}
