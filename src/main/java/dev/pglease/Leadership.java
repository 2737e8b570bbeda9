package dev.pglease;

import java.time.Duration;
import java.time.InstantSource;

/**
 * One grant of a lease to this process: the fencing token and the local deadline that makes it trustworthy.
 *
 * <p>{@link #isValid()} answers from the local deadline alone: the monotonic-clock reading taken before the last
 * successful renew statement was sent, plus {@code renewDeadline}. It needs no database round trip, so it is cheap
 * enough to call before every protected action, and a process that was paused past its deadline sees
 * {@code false} the moment it runs again. The same deadline is also kept on the wall clock, and the grant ends when
 * either clock says it has passed: the monotonic clock stands still while a virtual machine or laptop is suspended,
 * the wall clock does not (a forward jump of the wall clock only costs a spurious step-down). A grant never becomes valid again once invalid: a new grant comes with
 * a new, higher token.
 *
 * <p>Pass {@link #token()} with every protected write: to {@link PgLease#inFencedTransaction} for writes in the
 * same database, to a {@link ForwardFence} for other resources, or to a remote service that checks it.
 */
public final class Leadership {

    private final String leaseName;
    private final String holder;
    private final long token;
    private final Ticker ticker;
    private final InstantSource wallClock;
    private final long grantedAt;
    private volatile long deadline;
    private volatile long wallDeadlineMillis;
    private volatile String revokedBecause;
    private volatile long revokedAt;

    /** A grant whose deadline is {@code deadline} on the ticker and as far away on the system's wall clock. */
    Leadership(String leaseName, String holder, long token, Ticker ticker, long deadline) {
        this(leaseName, holder, token, ticker, deadline, InstantSource.system(),
                InstantSource.system().millis() + Math.floorDiv(deadline - ticker.read(), 1_000_000L));
    }

    Leadership(String leaseName, String holder, long token, Ticker ticker, long deadline, InstantSource wallClock,
               long wallDeadlineMillis) {
        this.leaseName = leaseName;
        this.holder = holder;
        this.token = token;
        this.ticker = ticker;
        this.deadline = deadline;
        this.wallClock = wallClock;
        this.wallDeadlineMillis = wallDeadlineMillis;
        this.grantedAt = ticker.read();
    }

    /** The lease this grant is for. */
    public String leaseName() {
        return leaseName;
    }

    /** This process's holder id. */
    public String holder() {
        return holder;
    }

    /** The fencing token: higher than every token granted before for this lease. */
    public long token() {
        return token;
    }

    /** Whether this process may still act as the holder: not revoked and its local deadline not passed. */
    public boolean isValid() {
        return revokedBecause == null && !deadlinePassed(ticker.read());
    }

    /** Throws unless {@link #isValid()}. @throws LeaseException with reason LEASE_LOST */
    public void checkValid() {
        String why = revokedBecause;
        if (why == null && deadlinePassed(ticker.read())) {
            why = "its renew deadline passed";
        }
        if (why != null) {
            throw new LeaseException(LeaseException.Reason.LEASE_LOST,
                    "lease " + Names.quote(leaseName) + " token " + token + " is no longer held by " + holder + ": " + why);
        }
    }

    /** Time left before the local deadline; zero once invalid. */
    public Duration remaining() {
        if (revokedBecause != null) {
            return Duration.ZERO;
        }
        long byTicker = deadline - ticker.read();
        long byWall = (wallDeadlineMillis - wallClock.millis()) * 1_000_000L;
        return Duration.ofNanos(Math.max(0, Math.min(byTicker, byWall)));
    }

    /** Why this grant ended, or {@code null} while it has not been revoked (it may still have expired). */
    public String revocationReason() {
        return revokedBecause;
    }

    long deadline() {
        return deadline;
    }

    /** Whether the deadline has passed by the ticker reading {@code now} or by the wall clock. */
    boolean deadlinePassed(long now) {
        return now - deadline >= 0 || wallClock.millis() >= wallDeadlineMillis;
    }

    /** Ticker reading when this process learned of the grant. */
    long grantedAt() {
        return grantedAt;
    }

    /** Ticker reading after which this grant was no longer valid: its deadline or its revocation, whichever first. */
    long validUntil() {
        long end = deadline;
        if (revokedBecause != null && revokedAt - end < 0) {
            end = revokedAt;
        }
        return end;
    }

    void extend(long newDeadline, long newWallDeadlineMillis) {
        if (newDeadline - deadline > 0) {
            deadline = newDeadline;
        }
        if (newWallDeadlineMillis > wallDeadlineMillis) {
            wallDeadlineMillis = newWallDeadlineMillis;
        }
    }

    /** Ends the grant; returns false if it had already ended. */
    boolean revoke(String reason) {
        synchronized (this) {
            if (revokedBecause != null) {
                return false;
            }
            revokedAt = ticker.read();
            revokedBecause = reason;
            return true;
        }
    }

    boolean isRevoked() {
        return revokedBecause != null;
    }

    @Override
    public String toString() {
        return "Leadership{lease=" + leaseName + ", holder=" + holder + ", token=" + token + ", valid=" + isValid() + "}";
    }
}
