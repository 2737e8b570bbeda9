package dev.pglease.internal.group;

import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import java.util.concurrent.CompletableFuture;

/**
 * What a group member needs from the election engine: a campaign for one shard lease (of kind {@code shard}) that it
 * can start when the assignment gives it the shard and end cooperatively when the assignment moves the shard away.
 * The engine renews every held shard in its batched renewal and steps a holder down at its deadline, as for any
 * lease; notifications of released leases wake the campaigns that want them.
 */
public interface ShardCampaigns {

    /** Starts campaigning for {@code lease} at once; the listener hears of each grant and of its end. */
    Campaign start(String lease, LeaderListener listener);

    /** One shard's campaign. */
    interface Campaign {

        /** The current grant, or {@code null} while the campaign does not lead (it may have expired too). */
        Leadership leadership();

        /**
         * Ends the campaign cooperatively: if it leads, the listener's {@code onRevoked} is called while the grant
         * is still valid and returns first (in-flight work drains), then the lease is released, then the campaign
         * ends. Completes once the campaign has ended (released, or given up for an unreachable database: the lease
         * then expires on its own).
         */
        CompletableFuture<Void> handOver();
    }
}
