package dev.pglease.internal.group;

import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.internal.election.CampaignState;
import dev.pglease.internal.election.ElectionLoop;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.locks.LockSupport;

/**
 * {@link ShardCampaigns} on the election loop: a shard's campaign is an ordinary campaign of the loop; a cooperative
 * hand-over makes it unwanted (the loop calls the listener's {@code onRevoked} while the grant is valid, releases the
 * lease once it returned, and is a standby that does not acquire), then ends it.
 */
final class LoopShardCampaigns implements ShardCampaigns {

    /** How often a hand-over looks whether the loop has released the lease. */
    private static final long POLL_NANOS = 500_000L;

    private final ElectionLoop loop;
    private final Executor handOvers;

    LoopShardCampaigns(ElectionLoop loop, Executor handOvers) {
        this.loop = loop;
        this.handOvers = handOvers;
    }

    @Override
    public Campaign start(String lease, LeaderListener listener) {
        dev.pglease.internal.election.Campaign c = loop.join(lease, listener);
        return new Campaign() {
            @Override
            public Leadership leadership() {
                return c.leadership();
            }

            @Override
            public CompletableFuture<Void> handOver() {
                return CompletableFuture.runAsync(
                                () -> {
                                    loop.want(c, false);
                                    while (loop.isRunning() && !settled(c.state())) {
                                        LockSupport.parkNanos(POLL_NANOS);
                                    }
                                },
                                handOvers)
                        .thenCompose(released -> loop.leave(c));
            }
        };
    }

    /** Whether an unwanted campaign holds nothing any more: released (a standby) or ended. */
    private static boolean settled(CampaignState state) {
        return state instanceof CampaignState.Standby || state instanceof CampaignState.Closed;
    }
}
