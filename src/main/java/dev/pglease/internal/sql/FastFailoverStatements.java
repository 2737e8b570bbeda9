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

    public FastFailoverStatements(String schema) {
        this.schema = Names.schema(schema);
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

    /**
     * Registers this holder's current grant for crash takeover; the server accepts it only from the holder's login,
     * for its current unexpired token, from a session that holds the lease's lock, and records that session.
     */
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
     * Withdraws the registration of this login's grant {@code token} of lease {@code name}: from then on it is taken
     * only at expiry. Returns whether a registration was removed.
     */
    public boolean unregister(Connection c, String name, long token) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT " + schema + ".fast_failover_unregister(?, ?)")) {
            ps.setString(1, name);
            ps.setLong(2, token);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    /**
     * Takes over an unexpired lease whose registered holder's database session no longer exists, with the next token
     * by the term rule ({@code <schema>.fast_failover_take_over}). Returns the new token, or empty when the lease is
     * not taken.
     */
    public Optional<Long> takeOverEndedSession(Connection c, String name, String holder, Duration ttl)
            throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT " + schema + ".fast_failover_take_over(?, ?, ?)")) {
            ps.setString(1, name);
            ps.setString(2, holder);
            ps.setLong(3, LeaseStore.ttlMillis(ttl));
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                long token = rs.getLong(1);
                return rs.wasNull() ? Optional.empty() : Optional.of(token);
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

    /** Whether some session holds the advisory lock of {@code name} ({@code fast_failover_key}) exclusively now. */
    public boolean lockHeld(Connection c, String name) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks k, (SELECT "
                + schema + ".fast_failover_key(?) AS key) f WHERE k.locktype = 'advisory' AND k.granted"
                + " AND k.mode = 'ExclusiveLock' AND k.objsubid = 1"
                + " AND k.database = (SELECT d.oid FROM pg_catalog.pg_database d"
                + " WHERE d.datname = pg_catalog.current_database())"
                + " AND k.classid::bigint = (f.key >> 32) & 4294967295 AND k.objid::bigint = f.key & 4294967295)")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    /** Sleeps on the server (aborting the connection ends it at once). */
    public void sleep(Connection c, long millis) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT pg_catalog.pg_sleep(?)")) {
            ps.setDouble(1, millis / 1000.0);
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
