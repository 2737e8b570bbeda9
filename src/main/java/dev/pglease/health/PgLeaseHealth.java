package dev.pglease.health;

import dev.pglease.Elector;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * Health of a set of electors, for probes and dashboards: one {@link LeaseHealth} per lease, and an overall
 * verdict. No database round trip: each elector knows whether its last lease statement was answered.
 *
 * <pre>{@code
 * PgLeaseHealth health = new PgLeaseHealth().register(elector);
 * boolean ok = health.isHealthy();          // every lease led or a healthy standby
 * health.check().forEach((lease, h) -> System.out.println(lease + " " + h.state()));
 * }</pre>
 */
public final class PgLeaseHealth {

    private final List<Elector> electors = new CopyOnWriteArrayList<>();

    /** Adds an elector to report on; returns this for chaining. */
    public PgLeaseHealth register(Elector elector) {
        electors.add(Objects.requireNonNull(elector, "elector must not be null"));
        return this;
    }

    /** Stops reporting on an elector. */
    public void unregister(Elector elector) {
        electors.remove(elector);
    }

    /** The health of every registered elector now, by lease name, in registration order. */
    public Map<String, LeaseHealth> check() {
        Map<String, LeaseHealth> result = new LinkedHashMap<>();
        for (Elector e : electors) {
            result.put(e.leaseName(), LeaseHealth.of(e));
        }
        return result;
    }

    /** Whether every registered elector leads its lease or is a standby the database answers. */
    public boolean isHealthy() {
        return check().values().stream().allMatch(LeaseHealth::isHealthy);
    }
}
