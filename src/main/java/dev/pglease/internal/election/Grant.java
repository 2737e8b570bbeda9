package dev.pglease.internal.election;

import dev.pglease.Leadership;
import dev.pglease.LeaseException;
import dev.pglease.Ticker;
import dev.pglease.internal.util.Names;
import java.time.Duration;
import java.time.InstantSource;

/**
 * The {@link Leadership} of an elector, and the grant behind a {@link dev.pglease.LeaseLock}: the fencing token and
 * the local deadline, kept on the ticker and on the wall clock; the grant ends when either says it has passed, or
 * when it is revoked. The election loop extends it after every renewal answered in time.
 */
public final class Grant implements Leadership {

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
    public Grant(String leaseName, String holder, long token, Ticker ticker, long deadline) {
        this(
                leaseName,
                holder,
                token,
                ticker,
                deadline,
                InstantSource.system(),
                InstantSource.system().millis() + Math.floorDiv(deadline - ticker.read(), 1_000_000L));
    }

    public Grant(
            String leaseName,
            String holder,
            long token,
            Ticker ticker,
            long deadline,
            InstantSource wallClock,
            long wallDeadlineMillis) {
        this(leaseName, holder, token, ticker, wallClock, ticker.read(), deadline, wallDeadlineMillis);
    }

    /** A grant this process learned of at {@code grantedAt}, valid until both deadlines: reads no clock. */
    Grant(
            String leaseName,
            String holder,
            long token,
            Ticker ticker,
            InstantSource wallClock,
            long grantedAt,
            long deadline,
            long wallDeadlineMillis) {
        this.leaseName = leaseName;
        this.holder = holder;
        this.token = token;
        this.ticker = ticker;
        this.deadline = deadline;
        this.wallClock = wallClock;
        this.wallDeadlineMillis = wallDeadlineMillis;
        this.grantedAt = grantedAt;
    }

    /** The lease this grant is for. */
    @Override
    public String leaseName() {
        return leaseName;
    }

    /** This process's holder id. */
    @Override
    public String holder() {
        return holder;
    }

    /** The fencing token: higher than every token granted before for this lease. */
    @Override
    public long token() {
        return token;
    }

    /** Whether this process may still act as the holder: not revoked and its local deadline not passed. */
    @Override
    public boolean isValid() {
        return revokedBecause == null && !deadlinePassed(ticker.read());
    }

    /** Throws unless {@link #isValid()}. @throws LeaseException with reason LEASE_LOST */
    @Override
    public void checkValid() {
        String why = revokedBecause;
        if (why == null && deadlinePassed(ticker.read())) {
            why = "its renew deadline passed";
        }
        if (why != null) {
            throw new LeaseException(
                    LeaseException.Reason.LEASE_LOST,
                    "lease " + Names.quote(leaseName) + " token " + token + " is no longer held by " + holder + ": "
                            + why);
        }
    }

    /** Time left before the local deadline; zero once invalid. */
    @Override
    public Duration remaining() {
        if (revokedBecause != null) {
            return Duration.ZERO;
        }
        long byTicker = deadline - ticker.read();
        long byWall = (wallDeadlineMillis - wallClock.millis()) * 1_000_000L;
        return Duration.ofNanos(Math.max(0, Math.min(byTicker, byWall)));
    }

    /** Why this grant ended, or {@code null} while it has not been revoked (it may still have expired). */
    @Override
    public String revocationReason() {
        return revokedBecause;
    }

    public long deadline() {
        return deadline;
    }

    /** Whether the deadline has passed by the ticker reading {@code now} or by the wall clock. */
    boolean deadlinePassed(long now) {
        return deadlinePassed(now, wallClock.millis());
    }

    /** Whether the deadline has passed by the ticker reading {@code now} or the wall-clock reading {@code nowMillis}. */
    boolean deadlinePassed(long now, long nowMillis) {
        return now - deadline >= 0 || nowMillis >= wallDeadlineMillis;
    }

    /** Ticker reading when this process learned of the grant. */
    public long grantedAt() {
        return grantedAt;
    }

    /** Ticker reading after which this grant was no longer valid: its deadline or its revocation, whichever first. */
    public long validUntil() {
        long end = deadline;
        if (revokedBecause != null && revokedAt - end < 0) {
            end = revokedAt;
        }
        return end;
    }

    public void extend(long newDeadline, long newWallDeadlineMillis) {
        if (newDeadline - deadline > 0) {
            deadline = newDeadline;
        }
        if (newWallDeadlineMillis > wallDeadlineMillis) {
            wallDeadlineMillis = newWallDeadlineMillis;
        }
    }

    /** Ends the grant; returns false if it had already ended. */
    public boolean revoke(String reason) {
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

    /** The local deadline on the wall clock, in epoch milliseconds. */
    public long wallDeadline() {
        return wallDeadlineMillis;
    }

    /** Whether the local deadline has passed, by the ticker or the wall clock. */
    public boolean deadlinePassed() {
        return deadlinePassed(ticker.read());
    }

    @Override
    public String toString() {
        return "Leadership{lease=" + leaseName + ", holder=" + holder + ", token=" + token + ", valid=" + isValid()
                + "}";
    }
}
