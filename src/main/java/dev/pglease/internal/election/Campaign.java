package dev.pglease.internal.election;

import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;

/**
 * This process's campaign for one lease: its state (changed only by the election loop, under its lock, through
 * {@link Transitions}) and what the loop last learned from the database. Read from outside through the accessors.
 */
public final class Campaign {

    final String name;
    final LeaderListener listener;
    /** Runs the listener's calls one at a time, in order. */
    final Executor callbacks;

    final CompletableFuture<Void> closed = new CompletableFuture<>();
    /** Written under the loop's lock; read from any thread. */
    volatile CampaignState state;
    /** Whether the campaign should hold the lease; written under the loop's lock. */
    volatile boolean wanted = true;
    /** A notification asked for a re-read of the lease row; guarded by the loop's lock. */
    boolean lookAgain;
    /**
     * How often fast failover told that the holder's lock was freed; guarded by the loop's lock. An acquire compares it
     * before and after: a holder gone while it was in flight is not overruled by its answer.
     */
    long holderGone;

    volatile boolean reachable = true;
    volatile String observedHolder;

    Campaign(String name, LeaderListener listener, Executor callbacks, long now) {
        this.name = name;
        this.listener = listener;
        this.callbacks = callbacks;
        this.state = new CampaignState.Standby(now, 0);
    }

    /** The lease this campaign is for. */
    public String name() {
        return name;
    }

    /** The current grant, or {@code null} while this process does not lead (it may also have expired). */
    public Leadership leadership() {
        return grant();
    }

    Grant grant() {
        CampaignState s = state;
        if (s instanceof CampaignState.Leading l) {
            return l.grant();
        } else if (s instanceof CampaignState.Releasing r) {
            return r.handingOver();
        }
        return null;
    }

    /** Where the campaign stands. */
    public CampaignState state() {
        return state;
    }

    /** Whether the campaign should hold the lease (see {@link ElectionLoop#want}). */
    public boolean wanted() {
        return wanted;
    }

    /** Completes once the campaign has ended (left and released, or the loop closed). */
    public CompletableFuture<Void> closed() {
        return closed;
    }

    /** Whether the database answered the campaign's last statement. */
    public boolean reachable() {
        return reachable;
    }

    /** The holder the database reported at the last acquire attempt, or {@code null}. */
    public String observedHolder() {
        return observedHolder;
    }

    @Override
    public String toString() {
        return "Campaign{lease=" + name + ", state=" + state + ", wanted=" + wanted + "}";
    }
}
