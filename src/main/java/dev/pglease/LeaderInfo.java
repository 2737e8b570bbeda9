package dev.pglease;

import java.time.Duration;
import java.time.Instant;
import java.util.Objects;

/**
 * Who holds a lease, as the database sees it at the moment of the query.
 *
 * @param leaseName the lease
 * @param holder    the holder id
 * @param token     the current fencing token
 * @param remaining how long the grant has left, on the database clock
 * @param expiresAt the expiry, as a database timestamp
 */
public record LeaderInfo(String leaseName, String holder, long token, Duration remaining, Instant expiresAt) {

    public LeaderInfo {
        Objects.requireNonNull(leaseName, "leaseName");
        Objects.requireNonNull(holder, "holder");
        Objects.requireNonNull(remaining, "remaining");
        Objects.requireNonNull(expiresAt, "expiresAt");
    }
}
