package dev.pglease.internal.group;

import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.internal.election.ElectionLoop;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;

/**
 * {@link ShardCampaigns} on the election loop: a shard's campaign is an ordinary campaign of the loop, and a
 * cooperative hand-over calls the listener's {@code onRevoked} on {@code handOvers} before the loop ends the
 * campaign and releases the lease (the listener's second {@code onRevoked}, from the loop, is a no-op for a grant it
 * was already told about: see {@link ShardSlot}).
 */
final class LoopShardCampaigns implements ShardCampaigns {

    private final ElectionLoop loop;
    private final Executor handOvers;

    LoopShardCampaigns(ElectionLoop loop, Executor handOvers) {
        this.loop = loop;
        this.handOvers = handOvers;
    }

    @Override
    public Campaign start(String lease, LeaderListener listener) {
        ElectionLoop.Campaign c = loop.join(lease, listener);
        return new Campaign() {
            @Override
            public Leadership leadership() {
                return c.leadership();
            }

            @Override
            public CompletableFuture<Void> handOver() {
                return CompletableFuture.runAsync(
                                () -> {
                                    Leadership l = c.leadership();
                                    if (l != null && l.isValid()) {
                                        listener.onRevoked(l);
                                    }
                                },
                                handOvers)
                        .thenCompose(done -> loop.leave(c));
            }
        };
    }
}
