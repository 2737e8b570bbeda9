package dev.pglease;

import java.time.Duration;

/**
 * Hooks into the election loop for metrics and tracing. Every method has a no-op default. Calls come from the
 * election thread: implementations must be fast and must not block; exceptions they throw are logged and ignored.
 */
public interface LeaseObserver {

    /** No-op observer. */
    LeaseObserver NONE = new LeaseObserver() {};

    /**
     * An acquire statement finished.
     *
     * @param granted whether this process now holds the lease
     * @param token   the granted token, or the current token of the lease when denied ({@code 0} if unknown)
     * @param latency time from sending the statement to reading its answer
     */
    default void acquireAttempted(String leaseName, boolean granted, long token, Duration latency) {}

    /** A renewal succeeded; {@code latency} is the round trip of the (batched) statement. */
    default void renewed(String leaseName, long token, Duration latency) {}

    /**
     * A renewal did not succeed.
     *
     * @param lost  {@code true} when the database answered that the lease is no longer held (step-down follows);
     *              {@code false} when the statement failed and will be retried until the local deadline
     * @param cause the error, or {@code null} when the lease was lost
     */
    default void renewFailed(String leaseName, long token, boolean lost, Throwable cause) {}

    /** This process stopped leading; {@code reason} is a short human-readable cause. */
    default void steppedDown(String leaseName, long token, String reason) {}

    /** This process released the lease in the database. */
    default void released(String leaseName, long token) {}

    /** A lease statement failed because the database was unreachable or returned an error. */
    default void databaseError(String leaseName, Throwable cause) {}
}
