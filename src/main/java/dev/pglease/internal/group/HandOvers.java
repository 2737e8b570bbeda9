package dev.pglease.internal.group;

import dev.pglease.internal.election.Campaign;
import dev.pglease.internal.election.CampaignState;
import dev.pglease.internal.election.ElectionLoop;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The cooperative hand-overs of one process's shards, on one thread: a hand-over makes the campaign unwanted (the
 * loop calls its listener's {@code onRevoked} while the grant is valid and releases the lease once it returned), then
 * ends the campaign once the loop holds nothing for it any more. While hand-overs are pending, their campaigns are
 * looked at every {@link #POLL_MICROS} microseconds; none are looked at otherwise.
 */
final class HandOvers implements AutoCloseable {

    /** How often pending hand-overs are looked at: a released shard's campaign ends at most this much later. */
    static final long POLL_MICROS = 500;

    private static final AtomicInteger THREADS = new AtomicInteger();

    private record Pending(ElectionLoop loop, Campaign campaign, CompletableFuture<Void> done) {}

    private final ScheduledThreadPoolExecutor thread;
    private final Set<Pending> pending = ConcurrentHashMap.newKeySet();
    /** The running poll, or {@code null}. Guarded by this. */
    private ScheduledFuture<?> poll;

    HandOvers() {
        this.thread = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "pglease-hand-overs-" + THREADS.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        this.thread.setRemoveOnCancelPolicy(true);
    }

    /** Runs what follows a hand-over (off the engine's threads). */
    Executor executor() {
        return thread;
    }

    /** Hands {@code campaign} over; completes once the campaign has ended. */
    CompletableFuture<Void> handOver(ElectionLoop loop, Campaign campaign) {
        CompletableFuture<Void> done = new CompletableFuture<>();
        loop.want(campaign, false);
        pending.add(new Pending(loop, campaign, done));
        synchronized (this) {
            if (poll == null && !thread.isShutdown()) {
                poll = thread.scheduleWithFixedDelay(this::look, 0, POLL_MICROS, TimeUnit.MICROSECONDS);
            }
        }
        return done;
    }

    private void look() {
        for (Pending p : pending) {
            CampaignState s = p.campaign().state();
            if (!p.loop().isRunning() || s instanceof CampaignState.Standby || s instanceof CampaignState.Closed) {
                pending.remove(p);
                p.loop()
                        .leave(p.campaign())
                        .whenCompleteAsync(
                                (ended, error) -> {
                                    if (error != null) {
                                        p.done().completeExceptionally(error);
                                    } else {
                                        p.done().complete(null);
                                    }
                                },
                                thread);
            }
        }
        synchronized (this) {
            if (pending.isEmpty() && poll != null) {
                poll.cancel(false);
                poll = null;
            }
        }
    }

    @Override
    public void close() {
        thread.shutdown();
    }
}
