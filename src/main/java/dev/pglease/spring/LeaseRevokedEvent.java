package dev.pglease.spring;

import dev.pglease.Leadership;
import java.util.Objects;
import org.springframework.context.ApplicationEvent;

/**
 * This process stopped leading (its deadline passed, the database said it lost the lease, or it released it): stop leader work now. Published by {@link LeaderElection} to the application context; listen with
 * {@code @EventListener}. Delivered on pglease's callback thread, after the {@code LeaderListener} beans.
 */
public final class LeaseRevokedEvent extends ApplicationEvent {

    private static final long serialVersionUID = 1L;
    private final transient Leadership leadership;

    public LeaseRevokedEvent(LeaderElection source, Leadership leadership) {
        super(source);
        this.leadership = Objects.requireNonNull(leadership, "leadership must not be null");
    }

    /** The grant that was revoked, with its lease name and fencing token. */
    public Leadership leadership() {
        return leadership;
    }

    @Override
    public String toString() {
        return "LeaseRevokedEvent{lease=" + leadership.leaseName() + ", token=" + leadership.token() + "}";
    }
}
