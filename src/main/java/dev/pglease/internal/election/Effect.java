package dev.pglease.internal.election;

/**
 * What a transition asks the loop to do: send a statement, change a leadership (the loop does that in one place,
 * {@link Leaderships}), arm the deadline timer, look at the lease row again, end the campaign, or log.
 */
sealed interface Effect {

    /** Send an acquire now. */
    record SendAcquire() implements Effect {}

    /** Renew {@code grant} now (in the loop's batch). */
    record SendRenew(Grant grant) implements Effect {}

    /** Renew {@code token} once more after a step-down, now. */
    record SendResume(long token) implements Effect {}

    /** Give {@code token} back now. */
    record SendRelease(long token) implements Effect {}

    /** This process leads with {@code grant}: tell the listener. */
    record Elected(Grant grant) implements Effect {}

    /** End {@code grant} locally now, and tell the listener and the observer why. */
    record Revoked(Grant grant, String reason) implements Effect {}

    /**
     * Tell the listener its leadership ends while {@code grant} stays valid, so it can finish in-flight work; report
     * {@link Event.HandOverDone} when it returned.
     */
    record HandOver(Grant grant) implements Effect {}

    /** End {@code grant} locally now without telling the listener (it was told already): a hand-over's end. */
    record Ended(Grant grant, String reason) implements Effect {}

    /** A renewal sent at {@code sentAt} (at {@code sentAtMillis} on the wall clock) extends {@code grant} so far. */
    record Extended(Grant grant, long sentAt, long sentAtMillis, long deadline, long wallDeadlineMillis)
            implements Effect {}

    /** Check deadlines again at {@code at} even if the loop thread is blocked. */
    record ArmDeadline(long at) implements Effect {}

    /** Re-read the lease row soon (coalesced with other leases'). */
    record LookAgain() implements Effect {}

    /** The campaign has ended: complete its future and forget it. */
    record Finished() implements Effect {}

    /** Log {@code message} at INFO, or at WARN. */
    record Log(boolean warn, String message) implements Effect {}
}
