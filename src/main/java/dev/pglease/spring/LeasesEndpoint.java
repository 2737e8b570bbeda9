package dev.pglease.spring;

import dev.pglease.Elector;
import dev.pglease.PgLease;
import dev.pglease.health.LeaseHealth;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.springframework.boot.actuate.endpoint.annotation.Endpoint;
import org.springframework.boot.actuate.endpoint.annotation.ReadOperation;
import org.springframework.boot.actuate.endpoint.annotation.WriteOperation;

/**
 * Actuator endpoint {@code leases} ({@code GET /actuator/leases}): this instance's leases, each with its role
 * (leader or standby), fencing token and remaining validity while it leads, and the leader the database last
 * reported while it stands by. With {@code pglease.actuator.operations-enabled=true}, {@code POST /actuator/leases}
 * releases the lease on an operator's request: leader work in flight drains first, the lease is released so a
 * standby takes over at once, and this instance campaigns again after one retry period. Expose it like any
 * endpoint ({@code management.endpoints.web.exposure.include=health,leases}) and secure it like the others.
 */
@Endpoint(id = "leases")
public class LeasesEndpoint {

    private final LeaderElection election;
    private final PgLease pglease;
    private final boolean operationsEnabled;

    public LeasesEndpoint(LeaderElection election, PgLease pglease, boolean operationsEnabled) {
        this.election = election;
        this.pglease = pglease;
        this.operationsEnabled = operationsEnabled;
    }

    /** This instance's leases. */
    @ReadOperation
    public Map<String, Object> leases() {
        Map<String, Object> lease = new LinkedHashMap<>();
        lease.put("lease", election.leaseName());
        Elector elector = election.elector().orElse(null);
        if (elector == null) {
            lease.put("role", "stopped");
        } else {
            LeaseHealth health = LeaseHealth.of(elector);
            lease.putAll(PgLeaseHealthIndicator.details(health));
            lease.put("leader", health.isLeader() ? pglease.holderId() : health.leader().orElse(null));
        }
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("holder", pglease.holderId());
        body.put("leases", List.of(lease));
        body.put("operationsEnabled", operationsEnabled);
        return body;
    }

    /**
     * Operator action: gives up the lease (after draining) so a standby takes over, then campaigns again after one
     * retry period.
     *
     * @param action {@code release}
     * @throws IllegalStateException    unless {@code pglease.actuator.operations-enabled=true}
     * @throws IllegalArgumentException for any other action
     */
    @WriteOperation
    public Map<String, Object> operate(String action) throws InterruptedException {
        if (!operationsEnabled) {
            throw new IllegalStateException("lease operations are disabled: set "
                    + "pglease.actuator.operations-enabled=true to allow them");
        }
        if (!"release".equals(action)) {
            throw new IllegalArgumentException("unknown lease action '" + action + "': the only action is release");
        }
        boolean wasLeader = election.isLeader();
        Duration pause = pglease.config().retryPeriod();
        election.releaseAndRejoin(pause);
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("lease", election.leaseName());
        body.put("released", wasLeader);
        body.put("campaignsAgainAfterMillis", pause.toMillis());
        return body;
    }
}
