package dev.pglease.internal.group;

import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.internal.election.ElectionLoop;
import java.util.concurrent.CompletableFuture;

/**
 * {@link ShardCampaigns} on the election loop: a shard's campaign is an ordinary campaign of the loop; a cooperative
 * hand-over makes it unwanted (the loop calls the listener's {@code onRevoked} while the grant is valid, releases the
 * lease once it returned, and is a standby that does not acquire), then ends it ({@link HandOvers}).
 */
final class LoopShardCampaigns implements ShardCampaigns {

    private final ElectionLoop loop;
    private final HandOvers handOvers;

    LoopShardCampaigns(ElectionLoop loop, HandOvers handOvers) {
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
                return handOvers.handOver(loop, c);
            }
        };
    }
}
