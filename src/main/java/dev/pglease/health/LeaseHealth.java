package dev.pglease.health;

import dev.pglease.Elector;
import dev.pglease.Leadership;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * The health of one elector at one moment: whether this process leads the lease, is a standby ready to take
 * over, or can not reach the database. Answered from the elector's own state, without a database round trip, so
 * it is cheap enough for a liveness or readiness probe.
 *
 * @param leaseName the lease
 * @param state     {@link Elector.State#LEADER}, {@link Elector.State#STANDBY},
 *                  {@link Elector.State#DATABASE_UNREACHABLE} or {@link Elector.State#CLOSED}
 * @param token     the fencing token while leading
 * @param remaining time left before the leader's local deadline (zero unless leading)
 * @param leader    the holder the database reported at the last acquire attempt, while not leading
 */
public record LeaseHealth(
        String leaseName, Elector.State state, Optional<Long> token, Duration remaining, Optional<String> leader) {

    public LeaseHealth {
        Objects.requireNonNull(leaseName, "leaseName");
        Objects.requireNonNull(state, "state");
        Objects.requireNonNull(token, "token");
        Objects.requireNonNull(remaining, "remaining");
        Objects.requireNonNull(leader, "leader");
    }

    /** Reads the health of an elector now. */
    public static LeaseHealth of(Elector elector) {
        Elector.State state = elector.state();
        Optional<Leadership> leadership = state == Elector.State.LEADER ? elector.leadership() : Optional.empty();
        if (state == Elector.State.LEADER && leadership.isEmpty()) {
            state = Elector.State.STANDBY; // the grant ended between the two reads
        }
        return new LeaseHealth(
                elector.leaseName(),
                state,
                leadership.map(Leadership::token),
                leadership.map(Leadership::remaining).orElse(Duration.ZERO),
                state == Elector.State.LEADER ? Optional.empty() : elector.lastSeenLeader());
    }

    /** Leading, or a standby that the database answers: this node is doing its job. */
    public boolean isHealthy() {
        return state == Elector.State.LEADER || state == Elector.State.STANDBY;
    }

    /** Whether this process leads the lease. */
    public boolean isLeader() {
        return state == Elector.State.LEADER;
    }
}
