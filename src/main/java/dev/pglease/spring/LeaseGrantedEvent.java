package dev.pglease.spring;

import dev.pglease.Leadership;
import java.util.Objects;
import org.springframework.context.ApplicationEvent;

/**
 * This process was granted the lease: it leads from now until the matching {@link LeaseRevokedEvent}. Published by {@link LeaderElection} to the application context; listen with
 * {@code @EventListener}. Delivered on pglease's callback thread, after the {@code LeaderListener} beans.
 */
public final class LeaseGrantedEvent extends ApplicationEvent {

    private static final long serialVersionUID = 1L;
    private final transient Leadership leadership;

    public LeaseGrantedEvent(LeaderElection source, Leadership leadership) {
        super(source);
        this.leadership = Objects.requireNonNull(leadership, "leadership must not be null");
    }

    /** The grant that was granted, with its lease name and fencing token. */
    public Leadership leadership() {
        return leadership;
    }

    @Override
    public String toString() {
        return "LeaseGrantedEvent{lease=" + leadership.leaseName() + ", token=" + leadership.token() + "}";
    }
}
