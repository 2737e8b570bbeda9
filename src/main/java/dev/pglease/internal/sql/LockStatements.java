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

    private final String schema;
    private final String leases;
    private final LeaseStatements leaseStatements;

    public LockStatements(String schema) {
        this.schema = Names.schema(schema);
        this.leases = schema + ".leases";
        this.leaseStatements = new LeaseStatements(schema);
    }

    /** Takes the lock if it is free or expired: the acquire statement of {@link LeaseStatements#acquire}. */
    public Acquired take(Connection c, String name, String holder, Duration ttl) throws SQLException {
        return leaseStatements.acquire(c, name, holder, ttl);
    }

    /**
     * Extends a lock this holder still has with this token and that has not expired: it now expires {@code ttl}
     * after this statement (shorter or longer than before). The extension time is kept in {@code renewed_at}, the
     * point {@link #unlock} measures keep-at-least from. Returns whether the lock was extended.
     */
    public boolean extend(Connection c, String name, String holder, long token, Duration ttl) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                UPDATE %s
                   SET renewed_at = clock_timestamp(),
                       expires_at = clock_timestamp() + ? * interval '1 millisecond'
                 WHERE name = ? AND holder = ? AND token = ? AND expires_at > clock_timestamp()
                   AND %2$s.token_term(token) >= %2$s.current_term()
                RETURNING token
                """.formatted(leases, schema))) {
            ps.setLong(1, LeaseStore.ttlMillis(ttl));
            ps.setString(2, name);
            ps.setString(3, holder);
            ps.setLong(4, token);
            return Rows.atMostOne(ps, "lock extension", name);
        }
    }

    /**
     * Unlocks a lock this holder still has with this token. If less than {@code keepAtLeast} has passed since it
     * was taken or last extended ({@code renewed_at}, database clock), the holder stays and the lock expires at
     * {@code renewed_at + keepAtLeast} (never later than it would have anyway); otherwise it is released now. The
     * token does not change: the next acquire bumps it. Returns whether this holder still had the lock.
     */
    public boolean unlock(Connection c, String name, String holder, long token, Duration keepAtLeast)
            throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                UPDATE %s AS l
                   SET holder = CASE WHEN l.renewed_at + ? * interval '1 millisecond' > n.now THEN l.holder END,
                       expires_at = CASE WHEN l.renewed_at + ? * interval '1 millisecond' > n.now
                                         THEN least(l.expires_at, l.renewed_at + ? * interval '1 millisecond')
                                         ELSE n.now END
                  FROM (SELECT clock_timestamp() AS now) n
                 WHERE l.name = ? AND l.holder = ? AND l.token = ? AND l.expires_at > n.now
                RETURNING l.token
                """.formatted(leases))) {
            long keep = keepAtLeast.toMillis();
            ps.setLong(1, keep);
            ps.setLong(2, keep);
            ps.setLong(3, keep);
            ps.setString(4, name);
            ps.setString(5, holder);
            ps.setLong(6, token);
            return Rows.atMostOne(ps, "unlock", name);
        }
    }
}
