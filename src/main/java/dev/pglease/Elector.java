package dev.pglease;

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
    private final ElectionLoop.Campaign campaign;
    private final Duration closeTimeout;

    Elector(ElectionLoop loop, ElectionLoop.Campaign campaign, Duration closeTimeout) {
        this.loop = loop;
        this.campaign = campaign;
        this.closeTimeout = closeTimeout;
    }

    /** The lease this elector campaigns for. */
    public String leaseName() {
        return campaign.name;
    }

    /** Whether this process holds the lease now, judged by its local deadline (no database round trip). */
    public boolean isLeader() {
        Leadership l = campaign.leadership;
        return l != null && l.isValid();
    }

    /** The current grant, if this process holds the lease now. */
    public Optional<Leadership> leadership() {
        Leadership l = campaign.leadership;
        return l != null && l.isValid() ? Optional.of(l) : Optional.empty();
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
            if (left <= 0 || campaign.closed.isDone()) {
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
        return "Elector{lease=" + campaign.name + ", holder=" + loop.holder() + ", leader=" + isLeader() + "}";
    }
}
