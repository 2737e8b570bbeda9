package dev.pglease;

import dev.pglease.internal.election.Campaign;
import dev.pglease.internal.election.ElectionLoop;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * This process's candidacy for one lease, created by {@link PgLease#elector(String, LeaderListener)}. It campaigns
 * from creation until {@link #close()}, which releases the lease if held so that a standby takes over at once.
 */
public final class Elector implements AutoCloseable {

    private final ElectionLoop loop;
    private final Campaign campaign;
    private final Duration closeTimeout;

    Elector(ElectionLoop loop, Campaign campaign, Duration closeTimeout) {
        this.loop = loop;
        this.campaign = campaign;
        this.closeTimeout = closeTimeout;
    }

    /** The lease this elector campaigns for. */
    public String leaseName() {
        return campaign.name();
    }

    /** Whether this process holds the lease now, judged by its local deadline (no database round trip). */
    public boolean isLeader() {
        Leadership l = campaign.leadership();
        return l != null && l.isValid();
    }

    /** The current grant, if this process holds the lease now. */
    public Optional<Leadership> leadership() {
        Leadership l = campaign.leadership();
        return l != null && l.isValid() ? Optional.of(l) : Optional.empty();
    }

    /**
     * What this elector is doing now, for health checks: {@link State#LEADER}, {@link State#STANDBY} (the database
     * answered its last statement), {@link State#DATABASE_UNREACHABLE} (its last statement failed),
     * {@link State#ELECTION_STOPPED} (the election thread is gone) or {@link State#CLOSED}.
     */
    public State state() {
        if (campaign.closed().isDone()) {
            return State.CLOSED;
        }
        if (!loop.isRunning()) {
            return State.ELECTION_STOPPED;
        }
        if (isLeader()) {
            return State.LEADER;
        }
        return campaign.reachable() ? State.STANDBY : State.DATABASE_UNREACHABLE;
    }

    /**
     * The holder the database reported at this elector's last acquire attempt, if another process held the lease
     * then. Empty while this process leads, or when the lease was free or not yet asked about.
     */
    public Optional<String> lastSeenLeader() {
        return isLeader() ? Optional.empty() : Optional.ofNullable(campaign.observedHolder());
    }

    /** Health of an elector; see {@link #state()}. */
    public enum State {
        /** This process holds the lease. */
        LEADER,
        /** This process campaigns and the database answers: ready to take over. */
        STANDBY,
        /** The last lease statement failed: this process can not take over until the database answers again. */
        DATABASE_UNREACHABLE,
        /**
         * The election thread of this process is no longer running (it was interrupted): nothing renews or
         * campaigns. Restart the {@code PgLease}.
         */
        ELECTION_STOPPED,
        /** The elector was closed. */
        CLOSED
    }

    /** Waits until this process holds the lease, or the timeout passes. */
    public Optional<Leadership> awaitLeadership(Duration timeout) throws InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        while (true) {
            Optional<Leadership> l = leadership();
            if (l.isPresent()) {
                return l;
            }
            long left = end - System.nanoTime();
            if (left <= 0 || campaign.closed().isDone()) {
                return Optional.empty();
            }
            Thread.sleep(Math.max(1, Math.min(5, TimeUnit.NANOSECONDS.toMillis(left))));
        }
    }

    /**
     * Stops campaigning. If this process holds the lease, it stops trusting it at once and releases it in the
     * database (waiting at most renewDeadline for that), so a standby can take over without waiting for expiry.
     */
    @Override
    public void close() {
        try {
            loop.leave(campaign).get(closeTimeout.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            // The lease expires on its own; leadership already ended locally.
        }
    }

    @Override
    public String toString() {
        return "Elector{lease=" + campaign.name() + ", holder=" + loop.holder() + ", leader=" + isLeader() + "}";
    }
}
