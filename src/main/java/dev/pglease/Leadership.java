package dev.pglease;

/**
 * One grant of a lease to this process as an elected leader, handed to {@link LeaderListener} and returned by
 * {@link Elector#leadership()}.
 *
 * <p>{@link #isValid()} answers from the local deadline alone: the monotonic-clock reading taken before the last
 * successful renew statement was sent, plus {@code renewDeadline}. It needs no database round trip, so it is cheap
 * enough to call before every protected action, and a process that was paused past its deadline sees
 * {@code false} the moment it runs again. The same deadline is also kept on the wall clock, and the grant ends when
 * either clock says it has passed: the monotonic clock stands still while a virtual machine or laptop is suspended,
 * the wall clock does not (a forward jump of the wall clock only costs a spurious step-down). A grant never becomes
 * valid again once invalid: a new grant comes with a new, higher token.
 *
 * <p>Pass it (it is a {@link LeaseGrant}) with every protected write: to {@link PgLease#inFencedTransaction} for
 * writes in the same database, its {@link #token()} to a {@link ForwardFence} for other resources, or to a remote
 * service that checks it.
 */
public interface Leadership extends LeaseGrant {

    /** Why this grant ended, or {@code null} while it has not been revoked (it may still have expired). */
    String revocationReason();
}
