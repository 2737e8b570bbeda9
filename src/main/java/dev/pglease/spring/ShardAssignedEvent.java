package dev.pglease.spring;

import dev.pglease.Leadership;
import java.util.Objects;
import org.springframework.context.ApplicationEvent;

/**
 * This member now owns a shard of a lease group: from now until the matching {@link ShardRevokedEvent}. Published by
 * {@link GroupMembership} to the application context, after the {@code GroupListener} beans; listen with
 * {@code @EventListener}. Delivered on pglease's callback thread; calls for one shard come in order.
 */
public final class ShardAssignedEvent extends ApplicationEvent {

    private static final long serialVersionUID = 1L;
    private final String group;
    private final int shard;
    private final transient Leadership leadership;

    public ShardAssignedEvent(GroupMembership source, int shard, Leadership leadership) {
        super(source);
        this.group = source.group();
        this.shard = shard;
        this.leadership = Objects.requireNonNull(leadership, "leadership must not be null");
    }

    /** The group's name. */
    public String group() {
        return group;
    }

    /** The shard, 0-based. */
    public int shard() {
        return shard;
    }

    /** The shard's grant: its lease name ({@code <group>/<shard>}), fencing token and validity. */
    public Leadership leadership() {
        return leadership;
    }

    @Override
    public String toString() {
        return "ShardAssignedEvent{group=" + group + ", shard=" + shard + ", token=" + leadership.token() + "}";
    }
}
