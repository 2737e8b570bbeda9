package dev.pglease.spring;

import dev.pglease.Leadership;
import java.util.Objects;
import org.springframework.context.ApplicationEvent;

/**
 * This member no longer owns a shard of a lease group. Either the assignment moved the shard to another member, or
 * this member left the group ({@link #handedOver()}: the grant is still valid while the event is delivered, and
 * the shard is released only after every listener returned and the shard's {@link ShardOwner} work in flight
 * ended), or the grant ended ({@code handedOver()} is false: renewal refused, deadline passed, an operator's
 * handoff). Published by {@link GroupMembership} after the {@code GroupListener} beans.
 */
public final class ShardRevokedEvent extends ApplicationEvent {

    private static final long serialVersionUID = 1L;
    private final String group;
    private final int shard;
    private final boolean handedOver;
    private final transient Leadership leadership;

    public ShardRevokedEvent(GroupMembership source, int shard, Leadership leadership, boolean handedOver) {
        super(source);
        this.group = source.group();
        this.shard = shard;
        this.leadership = Objects.requireNonNull(leadership, "leadership must not be null");
        this.handedOver = handedOver;
    }

    /** The group's name. */
    public String group() {
        return group;
    }

    /** The shard, 0-based. */
    public int shard() {
        return shard;
    }

    /** The grant that ended, or is being handed over; once ended, {@link Leadership#revocationReason()} says why. */
    public Leadership leadership() {
        return leadership;
    }

    /** Whether this is a cooperative move (the grant was still valid when it began) rather than a loss. */
    public boolean handedOver() {
        return handedOver;
    }

    @Override
    public String toString() {
        return "ShardRevokedEvent{group=" + group + ", shard=" + shard + ", token=" + leadership.token()
                + ", handedOver=" + handedOver + "}";
    }
}
