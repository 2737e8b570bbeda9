package dev.pglease.internal.sql;

import dev.pglease.internal.store.LeaseStore;
import dev.pglease.internal.store.LeaseStore.Acquired;
import dev.pglease.internal.util.Names;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.time.Duration;

/**
 * The statements of a single-shot lock ({@code LeaseLock}) on a lease of the schema: it is taken with the acquire
 * statement an elector campaigns with, then extended or unlocked, each a conditional statement on the lease row.
 */
public final class LockStatements {

    private final String extend;
    private final String unlock;
    private final LeaseStatements leaseStatements;

    public LockStatements(String schema) {
        String s = Names.schema(schema);
        this.extend = "SELECT " + s + ".lock_extend(?, ?, ?, ?)";
        this.unlock = "SELECT " + s + ".lock_unlock(?, ?, ?, ?)";
        this.leaseStatements = new LeaseStatements(schema);
    }

    /**
     * Takes the lock if it is free or expired: the acquire of {@link LeaseStatements#acquire} for a lease of kind
     * lock (never re-taken by its own holder after a failover, so one process can not hold a lock twice).
     */
    public Acquired take(Connection c, String name, String holder, Duration ttl) throws SQLException {
        return leaseStatements.acquire(c, name, holder, ttl, LeaseStatements.Kind.LOCK);
    }

    /**
     * Extends a lock this holder and login still have with this token and that has not expired: it now expires
     * {@code ttl} after this statement (shorter or longer than before). The extension time is kept in
     * {@code renewed_at}, the point {@link #unlock} measures keep-at-least from. Returns whether the lock was extended.
     */
    public boolean extend(Connection c, String name, String holder, long token, Duration ttl) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(extend)) {
            ps.setString(1, name);
            ps.setString(2, holder);
            ps.setLong(3, token);
            ps.setLong(4, LeaseStore.ttlMillis(ttl));
            return Rows.bool(ps);
        }
    }

    /**
     * Unlocks a lock this holder and login still have with this token. If less than {@code keepAtLeast} has passed
     * since it was taken or last extended ({@code renewed_at}, database clock), the holder stays and the lock expires
     * at {@code renewed_at + keepAtLeast} (never later than it would have anyway); otherwise it is released now. The
     * token does not change: the next acquire bumps it. Returns whether this holder still had the lock.
     */
    public boolean unlock(Connection c, String name, String holder, long token, Duration keepAtLeast)
            throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(unlock)) {
            ps.setString(1, name);
            ps.setString(2, holder);
            ps.setLong(3, token);
            ps.setLong(4, keepAtLeast.toMillis());
            return Rows.bool(ps);
        }
    }
}
