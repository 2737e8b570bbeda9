package dev.pglease.internal.sql;

import dev.pglease.internal.store.LeaseStore;
import dev.pglease.internal.util.Names;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Optional;

/**
 * The statements of fast failover (crash takeover when the holder's session ends, see the schema's
 * {@code fast_failover_*} functions): a session-level advisory lock per lease, held by the holder's lease session
 * and watched by standbys, the registration of a grant, and the takeover of a lease whose holder's session ended.
 */
public final class FastFailoverStatements {

    private final String schema;
    private final String leases;

    public FastFailoverStatements(String schema) {
        this.schema = Names.schema(schema);
        this.leases = schema + ".leases";
    }

    /**
     * Takes the lease's session-level advisory lock on this connection, waiting at most {@code waitMillis} for
     * candidates that hold it briefly. Returns whether it was taken.
     */
    public boolean lock(Connection c, String name, int waitMillis) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT " + schema + ".fast_failover_lock(?, ?)")) {
            ps.setString(1, name);
            ps.setInt(2, waitMillis);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    /** Gives back the lease's advisory lock taken by {@link #lock}. */
    public void unlock(Connection c, String name) throws SQLException {
        try (PreparedStatement ps =
                c.prepareStatement("SELECT pg_advisory_unlock(" + schema + ".fast_failover_key(?))")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
            }
        }
    }

    /** Registers this holder's current grant for crash takeover; the server checks this session holds the lock. */
    public boolean register(Connection c, String name, String holder, long token) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT " + schema + ".fast_failover_register(?, ?, ?)")) {
            ps.setString(1, name);
            ps.setString(2, holder);
            ps.setLong(3, token);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    /**
     * Takes over an unexpired lease whose registered holder's session has ended (this session must hold the lease's
     * advisory lock), with the next token by the same rule as every grant. Returns the new token, or empty when the lease is not taken.
     */
    public Optional<Long> takeOverEndedSession(Connection c, String name, String holder, Duration ttl)
            throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                UPDATE %1$s AS l
                   SET holder = ?,
                       token = %2$s.fast_failover_next_token(l.token),
                       acquired_at = clock_timestamp(),
                       renewed_at = clock_timestamp(),
                       expires_at = clock_timestamp() + ? * interval '1 millisecond',
                       handoff_from = NULL, handoff_to = NULL, handoff_until = NULL
                 WHERE l.name = ? AND l.holder IS NOT NULL AND l.holder <> ? AND l.expires_at > clock_timestamp()
                   AND %2$s.holder_session_ended(l.name, l.token)
                   AND (l.handoff_until IS NULL OR l.handoff_until <= clock_timestamp()
                        OR (?::text IS DISTINCT FROM l.handoff_from
                            AND (l.handoff_to IS NULL OR starts_with(?::text, l.handoff_to))))
                RETURNING l.token
                """.formatted(leases, schema))) {
            ps.setString(1, holder);
            ps.setLong(2, LeaseStore.ttlMillis(ttl));
            ps.setString(3, name);
            ps.setString(4, holder);
            ps.setString(5, holder);
            ps.setString(6, holder);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return Optional.empty();
                }
                long token = rs.getLong(1);
                if (rs.next()) {
                    throw new IllegalStateException("takeover of " + Names.quote(name) + " returned more than one row");
                }
                return Optional.of(token);
            }
        }
    }

    /** Blocks until no session holds the lease's advisory lock exclusively, then holds it shared. */
    public void watch(Connection c, String name) throws SQLException {
        try (PreparedStatement ps =
                c.prepareStatement("SELECT pg_advisory_lock_shared(" + schema + ".fast_failover_key(?))")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
            }
        }
    }

    public void unwatch(Connection c, String name) throws SQLException {
        try (PreparedStatement ps =
                c.prepareStatement("SELECT pg_advisory_unlock_shared(" + schema + ".fast_failover_key(?))")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
            }
        }
    }

    /**
     * Takes the session-level advisory lock {@code (key1, key2)} (the two-integer key space, apart from the leases'
     * keys) without waiting: the lock a lease session holds so that its own process can watch it end. Returns
     * whether it was taken.
     */
    public boolean lockSession(Connection c, int key1, int key2) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT pg_try_advisory_lock(?, ?)")) {
            ps.setInt(1, key1);
            ps.setInt(2, key2);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    /** Blocks until no session holds the advisory lock {@code (key1, key2)} exclusively: until that session ends. */
    public void awaitSessionEnd(Connection c, int key1, int key2) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT pg_advisory_lock_shared(?, ?)")) {
            ps.setInt(1, key1);
            ps.setInt(2, key2);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
            }
        }
    }
}
