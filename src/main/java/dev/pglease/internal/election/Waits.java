package dev.pglease.internal.election;

import dev.pglease.internal.util.Timings;
import java.util.random.RandomGenerator;

/**
 * The time arithmetic of the election loop, on monotonic nanoseconds, built on {@link Timings}. Pure: no clock
 * reading, no I/O; the only state is the seeded source of jitter.
 *
 * <ul>
 *   <li>A holder's local deadline is the ticker reading taken <em>before</em> the successful acquire or renew was
 *       sent, plus renewDeadline.</li>
 *   <li>A holder renews every retryPeriod, and after a failed renewal retries quickly (never past its deadline).</li>
 *   <li>A standby that was told how long the lease has left sleeps until then plus a small jitter; it caps the sleep
 *       at retryPeriod only when it can not count on notifications to wake it on a release.</li>
 *   <li>After a database error a standby backs off exponentially from retryPeriod/2 up to 2 × retryPeriod, with
 *       up to 20% jitter.</li>
 * </ul>
 */
final class Waits {

    /** Most jitter added to a wake-up at a known expiry: spreads standbys without delaying failover much. */
    static final long MAX_EXPIRY_JITTER_NANOS = 10_000_000L;
    /** Least sleep between two attempts of a standby, so clock-rate differences can not make it spin. */
    static final long MIN_STANDBY_SLEEP_NANOS = 1_000_000L;

    private final long leaseDurationNanos;
    private final long renewDeadlineNanos;
    private final long retryPeriodNanos;
    private final RandomGenerator random;

    Waits(Timings timings, RandomGenerator random) {
        this(
                timings.leaseDuration().toNanos(),
                timings.renewDeadline().toNanos(),
                timings.retryPeriod().toNanos(),
                random);
    }

    Waits(long leaseDurationNanos, long renewDeadlineNanos, long retryPeriodNanos, RandomGenerator random) {
        this.leaseDurationNanos = leaseDurationNanos;
        this.renewDeadlineNanos = renewDeadlineNanos;
        this.retryPeriodNanos = retryPeriodNanos;
        this.random = random;
    }

    long leaseDurationNanos() {
        return leaseDurationNanos;
    }

    long retryPeriodNanos() {
        return retryPeriodNanos;
    }

    /** Local deadline of a grant acquired or renewed by a statement sent at {@code sentAt}. */
    long deadline(long sentAt) {
        return sentAt + renewDeadlineNanos;
    }

    /**
     * When the database lists a grant whose local deadline is {@code deadline} no longer (ticker): a lease duration
     * after the renewal that set that deadline was sent.
     */
    long expiry(long deadline) {
        return deadline - renewDeadlineNanos + leaseDurationNanos;
    }

    /** The same deadline on the wall clock, for a statement sent at wall-clock time {@code sentAtMillis}. */
    long wallDeadline(long sentAtMillis) {
        return sentAtMillis + Math.floorDiv(renewDeadlineNanos, 1_000_000L);
    }

    /**
     * Whether the answer to a statement sent at {@code sentAt} (ticker) and {@code sentAtMillis} (wall clock), read
     * at {@code now} and {@code nowMillis}, came after the deadline it would give by either clock: it must not be
     * trusted.
     */
    boolean answeredLate(long sentAt, long sentAtMillis, long now, long nowMillis) {
        return deadline(sentAt) - now <= 0 || nowMillis >= wallDeadline(sentAtMillis);
    }

    /** When to renew next after a successful statement sent at {@code sentAt}. */
    long nextRenewal(long sentAt) {
        return sentAt + retryPeriodNanos;
    }

    /** When to retry a failed renewal: quickly, doubling, never later than the deadline. */
    long renewRetry(long now, int failures, long deadline) {
        long backoff = Math.min(retryPeriodNanos / 2, (retryPeriodNanos / 8) << Math.min(failures - 1, 4));
        long retry = now + Math.max(backoff, MIN_STANDBY_SLEEP_NANOS);
        return retry - deadline < 0 ? retry : deadline;
    }

    /**
     * When a standby that was denied should try again.
     *
     * @param waitNanos             how long the database said the lease has left (0 when free or unknown)
     * @param notificationsHealthy  whether a release will wake this standby early through NOTIFY
     */
    long standbyWake(long now, long waitNanos, boolean notificationsHealthy) {
        long sleep = Math.max(waitNanos, 0);
        if (!notificationsHealthy) {
            sleep = Math.min(sleep, retryPeriodNanos);
        } else {
            sleep = Math.min(sleep, leaseDurationNanos + retryPeriodNanos);
        }
        long jitterBound = Math.min(MAX_EXPIRY_JITTER_NANOS, Math.max(retryPeriodNanos / 10, 1));
        return now + Math.max(sleep, MIN_STANDBY_SLEEP_NANOS) + random.nextLong(jitterBound + 1);
    }

    /**
     * When a standby tries again after {@code failures} consecutive failed acquires. The first failure's outcome is
     * unknown (the statement may have committed a grant whose answer was lost, and every other candidate waits for
     * it), so the second look comes at once, on a fresh connection; further failures back off as any error does.
     */
    long acquireRetry(long now, int failures) {
        return failures <= 1 ? now + MIN_STANDBY_SLEEP_NANOS : errorBackoff(now, failures - 1);
    }

    /** When a standby retries after {@code failures} consecutive database errors. */
    long errorBackoff(long now, int failures) {
        long base = Math.min(retryPeriodNanos * 2, (retryPeriodNanos / 2) << Math.min(Math.max(failures - 1, 0), 8));
        long jitter = random.nextLong(base / 5 + 1);
        return now + Math.max(base, MIN_STANDBY_SLEEP_NANOS) + jitter;
    }
}
