package dev.pglease.spring;

import dev.pglease.Elector;
import dev.pglease.health.LeaseHealth;
import java.util.LinkedHashMap;
import java.util.Map;
import org.springframework.boot.health.contributor.AbstractHealthIndicator;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.Status;

/**
 * Spring Boot health of the application's {@link LeaderElection}, built on {@link LeaseHealth}: {@code UP} while
 * this node leads or is a standby the database answers (detail {@code role}: leader or standby), {@code DOWN}
 * when its last lease statement failed or the election thread stopped, {@code OUT_OF_SERVICE} once the election was
 * closed (the application is shutting down).
 */
public class PgLeaseHealthIndicator extends AbstractHealthIndicator {

    private final LeaderElection election;

    public PgLeaseHealthIndicator(LeaderElection election) {
        super("pglease health check failed");
        this.election = election;
    }

    @Override
    protected void doHealthCheck(Health.Builder builder) {
        Elector elector = election.elector().orElse(null);
        if (elector == null) {
            builder.status(Status.OUT_OF_SERVICE)
                    .withDetail("lease", election.leaseName())
                    .withDetail("state", Elector.State.CLOSED.name());
            return;
        }
        LeaseHealth health = LeaseHealth.of(elector);
        builder.status(
                switch (health.state()) {
                    case LEADER, STANDBY -> Status.UP;
                    case DATABASE_UNREACHABLE, ELECTION_STOPPED -> Status.DOWN;
                    case CLOSED -> Status.OUT_OF_SERVICE;
                });
        builder.withDetails(details(health));
    }

    static Map<String, Object> details(LeaseHealth health) {
        Map<String, Object> details = new LinkedHashMap<>();
        details.put("lease", health.leaseName());
        details.put("state", health.state().name());
        details.put("role", health.isLeader() ? "leader" : "standby");
        health.token().ifPresent(t -> details.put("token", t));
        if (health.isLeader()) {
            details.put("remaining_ms", health.remaining().toMillis());
        }
        health.leader().ifPresent(l -> details.put("leader", l));
        return details;
    }
}
