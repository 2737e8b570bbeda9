package dev.pglease.cli;

import dev.pglease.GroupConfig;

/** Which mode the node command's options ask for, checked with messages that name the bad option. */
final class GroupMode {

    private GroupMode() {}

    /**
     * The member settings when the options ask for group mode ({@code --group}), {@code null} for an elector
     * ({@code --lease}).
     *
     * @throws IllegalArgumentException naming the bad option and what is allowed
     */
    static GroupConfig check(NodeCommand o) {
        if ((o.lease == null) == (o.group == null)) {
            throw new IllegalArgumentException(
                    "give either --lease NAME (one candidate) or --group NAME --shards N (a lease group member)");
        }
        if (o.group == null) {
            if (o.shards != null || o.weight != 1 || o.priority != 0) {
                throw new IllegalArgumentException("--shards, --weight and --priority go with --group, not --lease");
            }
            return null;
        }
        if (o.shards == null || o.shards < 1 || o.shards > 100_000) {
            throw new IllegalArgumentException(
                    "--group needs --shards between 1 and 100000, got " + (o.shards == null ? "none" : o.shards));
        }
        if (o.unfenced || !o.campaignDelay.isZero()) {
            throw new IllegalArgumentException("--unfenced and --campaign-delay are not supported with --group yet");
        }
        if (o.weight < GroupConfig.MIN_WEIGHT || o.weight > GroupConfig.MAX_WEIGHT) {
            throw new IllegalArgumentException("--weight must be between " + GroupConfig.MIN_WEIGHT + " and "
                    + GroupConfig.MAX_WEIGHT + ", got " + o.weight);
        }
        if (o.priority < GroupConfig.MIN_PRIORITY || o.priority > GroupConfig.MAX_PRIORITY) {
            throw new IllegalArgumentException("--priority must be between " + GroupConfig.MIN_PRIORITY + " and "
                    + GroupConfig.MAX_PRIORITY + ", got " + o.priority);
        }
        return GroupConfig.weight(o.weight).withPriority(o.priority);
    }
}
