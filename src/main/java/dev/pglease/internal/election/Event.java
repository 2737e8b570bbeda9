package dev.pglease.internal.election;

import dev.pglease.internal.store.LeaseStore;

/**
 * What can happen to a campaign: the answer (or failure) of a statement the loop sent for it, a turn of the loop,
 * a notification, a re-read of its lease row, its local deadline, a close, a change of whether it is wanted, and
 * what the fencing path and fast failover learn. Times are ticker readings; {@code sentAtMillis} is the wall clock.
 */
sealed interface Event {

    /** A turn of the loop: is a statement due? */
    record Tick() implements Event {}

    /** The answer to an acquire sent at {@code sentAt}. */
    record AcquireAnswered(LeaseStore.Acquired answer, long sentAt, long sentAtMillis) implements Event {}

    /** An acquire failed: its outcome is unknown. */
    record AcquireFailed() implements Event {}

    /** The answer to a renewal of {@code grant} sent at {@code sentAt}: whether the database renewed it. */
    record RenewAnswered(Grant grant, boolean renewed, long sentAt, long sentAtMillis) implements Event {}

    /** A renewal of {@code grant} failed. */
    record RenewFailed(Grant grant) implements Event {}

    /** The answer to the renewal of {@code token} after a step-down at the deadline. */
    record ResumeAnswered(long token, boolean renewed, long sentAt, long sentAtMillis) implements Event {}

    /** The renewal of {@code token} after a step-down failed. */
    record ResumeFailed(long token) implements Event {}

    /**
     * The release of {@code token} was answered: {@code released} when it was given back, false when the database no
     * longer listed it for this holder and login (expired, taken, or held under this holder id by another login).
     */
    record ReleaseAnswered(long token, boolean released) implements Event {}

    /** Giving {@code token} back failed. */
    record ReleaseFailed(long token) implements Event {}

    /** A notification named the lease, or notifications came back after an outage: look again. Never a fact. */
    record Notice() implements Event {}

    /**
     * The lease row as the loop re-read it after a notice: {@code null} when there is no row. A fact, unlike the
     * notification that asked for it.
     */
    record FactRead(LeaseStore.Fact fact) implements Event {}

    /**
     * The holder's session lock was freed (fast failover): the holder's session ended or it released. Not a
     * notification: no other login can cause it.
     */
    record HolderGone() implements Event {}

    /** The deadline timer or the loop found a local deadline passed. */
    record Deadline() implements Event {}

    /** The elector was closed. */
    record Close() implements Event {}

    /** Whether the campaign is wanted changed; the new value is in the context. */
    record WantedChanged() implements Event {}

    /** The listener's {@code onRevoked} for the hand-over of {@code grant} returned. */
    record HandOverDone(Grant grant) implements Event {}

    /**
     * A fence (or the fast-failover watch of the holder's session) found that the database no longer lets this
     * process use {@code token}.
     */
    record Lost(long token, String reason) implements Event {}
}
