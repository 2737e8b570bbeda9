package dev.pglease.cli;

import dev.pglease.Leadership;
import dev.pglease.Ticker;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * This process's own record of its local deadline per token: the ticker reading before the last successful
 * acquire or renew statement was sent, plus the renew deadline, and never later than the wall-clock reading before
 * that statement was sent plus the renew deadline (the library ends a grant at whichever comes first). Kept apart
 * from the library's state so that the reported deadline is evidence of its own, not derived from
 * {@link Leadership#remaining()}.
 */
final class Deadlines {
    private final Ticker ticker;
    private final long renewDeadlineNanos;
    private final double rate;
    private final long renewDeadlineMillis;
    /** By lease name and token (tokens of different leases, e.g. the shards of a group, may be equal). */
    private final Map<String, Deadline> byGrant = new ConcurrentHashMap<>();

    /** On the ticker, and on the reported wall clock (epoch ms, as the events' {@code t}). */
    private record Deadline(long tick, long wallMillis) {
        Deadline later(Deadline o) {
            return new Deadline(o.tick - tick > 0 ? o.tick : tick, Math.max(wallMillis, o.wallMillis));
        }
    }

    Deadlines(Ticker ticker, Duration renewDeadline, double rate) {
        this.ticker = ticker;
        this.renewDeadlineNanos = renewDeadline.toNanos();
        this.renewDeadlineMillis = renewDeadline.toMillis();
        this.rate = rate;
    }

    /** The node's monotonic ticker reading (never a clock compared with the database's). */
    long tick() {
        return ticker.read();
    }

    /**
     * A statement for {@code token} was answered: sent {@code latency} before a ticker reading taken before this
     * call (so this reading may be later than the send by more, if the process was stopped in between: the wall
     * clock bounds it), and at {@code sentWallMillis} on the reported wall clock.
     */
    void answered(String lease, long token, Duration latency, long sentWallMillis) {
        long sent = ticker.read() - latency.toNanos();
        byGrant.merge(
                key(lease, token),
                new Deadline(sent + renewDeadlineNanos, sentWallMillis + renewDeadlineMillis),
                Deadline::later);
    }

    /** The deadline for {@code token} of {@code lease} as a wall-clock time, given the wall time and ticker of now. */
    Long wallDeadline(String lease, long token, long wallNow, long tickNow) {
        Deadline d = byGrant.get(key(lease, token));
        if (d == null) {
            return null;
        }
        return Math.min(wallNow + Math.floorDiv((long) ((d.tick() - tickNow) / rate), 1_000_000L), d.wallMillis());
    }

    private static String key(String lease, long token) {
        return token + " " + lease;
    }
}
