package dev.pglease;

import java.time.Duration;
import java.time.Instant;

/**
 * Hooks into the election loop for metrics and tracing. Every method has a no-op default. Calls come from the
 * election thread (the lease group calls from pglease's group and callback threads): implementations must be fast
 * and must not block; exceptions they throw are logged and ignored.
 *
 * <p>The shards of a lease group are leases too ({@code <group>/<shard>}): the lease calls above are made for them as
 * for any lease, and the group calls below tell which group they belong to.
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

    /**
     * An acquire statement finished: the call pglease makes. As {@link #acquireAttempted(String, boolean, long,
     * Duration)}, which the default calls, and {@code sentAt}: the configured wall clock read before the statement
     * was sent. The statement ran between {@code sentAt} and any wall-clock reading taken in this call, however long
     * the process was stopped in between ({@code latency} counts to a moment before this call, on the ticker).
     */
    default void acquireAttempted(String leaseName, boolean granted, long token, Duration latency, Instant sentAt) {
        acquireAttempted(leaseName, granted, token, latency);
    }

    /** A renewal succeeded; {@code latency} is the round trip of the (batched) statement. */
    default void renewed(String leaseName, long token, Duration latency) {}

    /**
     * A renewal succeeded: the call pglease makes. As {@link #renewed(String, long, Duration)}, which the default
     * calls, and {@code sentAt}: the configured wall clock read before the statement was sent (see
     * {@link #acquireAttempted(String, boolean, long, Duration, Instant)}).
     */
    default void renewed(String leaseName, long token, Duration latency, Instant sentAt) {
        renewed(leaseName, token, latency);
    }

    /**
     * A renewal did not succeed.
     *
     * @param lost  {@code true} when the database answered that the lease is no longer held (step-down follows);
     *              {@code false} when the statement failed and will be retried: until the local deadline, and after a
     *              step-down at the deadline until the grant expires
     * @param cause the error, or {@code null} when the lease was lost
     */
    default void renewFailed(String leaseName, long token, boolean lost, Throwable cause) {}

    /** This process stopped leading; {@code reason} is a short human-readable cause. */
    default void steppedDown(String leaseName, long token, String reason) {}

    /** This process released the lease in the database. */
    default void released(String leaseName, long token) {}

    /** A lease statement failed because the database was unreachable or returned an error. */
    default void databaseError(String leaseName, Throwable cause) {}

    /**
     * This process joined lease group {@code group} of {@code shards} shards: its shards are the leases
     * {@code <group>/0} to {@code <group>/<shards - 1>}.
     */
    default void groupJoined(String group, int shards) {}

    /** This process left lease group {@code group} (its shards are handed over). */
    default void groupLeft(String group) {}

    /** This member of {@code group} now owns {@code shard}, with {@code token}. */
    default void shardAssigned(String group, int shard, long token) {}

    /**
     * This member of {@code group} no longer owns {@code shard} (its grant with {@code token}).
     *
     * @param handedOver {@code true} for a cooperative move (the assignment gave the shard to another member, or this
     *                   member left the group): the grant was still valid; {@code false} when the grant ended
     *                   (renewal refused, deadline passed, an operator took it)
     */
    default void shardRevoked(String group, int shard, long token, boolean handedOver) {}

    /**
     * Before this member's grant of {@code shard} with {@code token}, the shard had no owner for {@code unowned}: from
     * the release of the previous grant (a cooperative move, a leave, an operator's action) to this grant, by the
     * database clock; or, when the previous grant expired (its holder crashed, paused or lost the database), from
     * its expiry as this member last read it. Not told when unknown (the shard's first grant, a grant taken again
     * by the same member).
     */
    default void shardUnowned(String group, int shard, long token, Duration unowned) {}
}
