package dev.pglease;

import java.time.Duration;

/**
 * A grant of a lease to this process that can fence writes: the fencing token, and the local deadline that makes
 * the grant trustworthy. An elector's {@link Leadership} is one, and so is a {@link LeaseLock}.
 *
 * <p>Pass the grant with every protected write: to {@link PgLease#inFencedTransaction} for writes in a transaction
 * of their own, to {@link PgLease#fenceTransaction} for the caller's open transaction, or its {@link #token()} to
 * the {@link PgLease#forwardFence() forward fence} or a remote service that checks it.
 *
 * <p>{@link #isValid()} answers from the local deadline alone, without a database round trip, so it is cheap enough
 * to call before every protected action. A grant never becomes valid again once invalid: a new grant comes with a
 * new, higher token.
 */
public interface LeaseGrant {

    /** The lease this grant is for. */
    String leaseName();

    /** The holder id of the {@link PgLease} the lease was granted to. */
    String holder();

    /** The fencing token: higher than every token granted before for this lease. */
    long token();

    /** Whether this process may still act as the holder: the grant has not ended and its local deadline has not passed. */
    boolean isValid();

    /** Throws unless {@link #isValid()}. @throws LeaseException with reason LEASE_LOST */
    void checkValid();

    /** Time left before the local deadline; zero once invalid. */
    Duration remaining();
}
