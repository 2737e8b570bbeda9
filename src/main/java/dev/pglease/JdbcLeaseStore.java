package dev.pglease;

import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs lease statements on one dedicated connection taken from the application's {@link DataSource}. The
 * connection is set up for durable commits and a network timeout, and replaced after any error.
 */
final class JdbcLeaseStore implements LeaseStore {

    private static final Logger log = LoggerFactory.getLogger(JdbcLeaseStore.class);

    private final DataSource dataSource;
    private final LeaseSql sql;
    private final int networkTimeoutMillis;
    private final boolean allowUnsafeDurability;
    private Connection connection;
    private boolean synchronousCommitRaised;
    private boolean warnedSynchronousCommit;

    JdbcLeaseStore(DataSource dataSource, LeaseSql sql, Duration networkTimeout, boolean allowUnsafeDurability) {
        this.dataSource = dataSource;
        this.sql = sql;
        this.networkTimeoutMillis = (int) Math.max(1, Math.min(Integer.MAX_VALUE, networkTimeout.toMillis()));
        this.allowUnsafeDurability = allowUnsafeDurability;
    }

    @Override
    public synchronized LeaseSql.Acquired acquire(String name, String holder, Duration ttl) throws SQLException {
        Connection c = connection();
        try {
            return sql.acquire(c, name, holder, ttl);
        } catch (SQLException e) {
            discard();
            throw readOnlyAsOwnReason("acquire of lease " + Names.quote(name), e);
        } catch (RuntimeException e) {
            discard();
            throw e;
        }
    }

    @Override
    public synchronized List<String> renew(String holder, List<LeaseSql.Held> leases) throws SQLException {
        Connection c = connection();
        try {
            return sql.renew(c, holder, leases);
        } catch (SQLException e) {
            discard();
            throw readOnlyAsOwnReason("renewal", e);
        } catch (RuntimeException e) {
            discard();
            throw e;
        }
    }

    @Override
    public synchronized boolean release(String name, String holder, long token) throws SQLException {
        Connection c = connection();
        try {
            return sql.release(c, name, holder, token);
        } catch (SQLException e) {
            discard();
            throw readOnlyAsOwnReason("release of lease " + Names.quote(name), e);
        } catch (RuntimeException e) {
            discard();
            throw e;
        }
    }

    /**
     * A statement refused by a read-only server (a standby in recovery) becomes a {@link LeaseException} with reason
     * DATABASE_READ_ONLY, so that the loop and observers report it as such and never as a lost lease.
     */
    private static SQLException readOnlyAsOwnReason(String what, SQLException e) {
        if (LeaseSql.readOnly(e)) {
            throw LeaseSql.readOnlyFailure(what, e);
        }
        return e;
    }

    /** Opens the lease connection now, so that a bad database or unsafe settings are reported at start. */
    synchronized void verify() throws SQLException {
        connection();
    }

    private Connection connection() throws SQLException {
        if (connection != null) {
            return connection;
        }
        Connection c = dataSource.getConnection();
        try {
            c.setNetworkTimeout(Runnable::run, networkTimeoutMillis);
            if (!c.getAutoCommit()) {
                c.setAutoCommit(true);
            }
            synchronousCommitRaised = ensureDurable(c);
        } catch (SQLException | RuntimeException e) {
            closeQuietly(c);
            throw e;
        }
        connection = c;
        return c;
    }

    /** Refuses fsync=off (unless allowed) and raises synchronous_commit to on for this session. */
    private boolean ensureDurable(Connection c) throws SQLException {
        String[] settings = sql.durabilitySettings(c);
        String synchronousCommit = settings[0].toLowerCase(Locale.ROOT);
        String fsync = settings[1].toLowerCase(Locale.ROOT);
        if (fsync.equals("off")) {
            if (!allowUnsafeDurability) {
                throw new LeaseException(LeaseException.Reason.UNSAFE_DURABILITY,
                        "the server runs with fsync=off: a crash can lose an acknowledged grant and hand the same "
                                + "token to two holders. Turn fsync on, or set LeaseConfig.allowUnsafeDurability(true) "
                                + "for a throwaway test database");
            }
            log.warn("pglease: the server runs with fsync=off; acknowledged grants can be lost in a crash "
                    + "(allowed by allowUnsafeDurability)");
        }
        if (synchronousCommit.equals("off") || synchronousCommit.equals("local")) {
            sql.setSynchronousCommitOn(c);
            if (!warnedSynchronousCommit) {
                warnedSynchronousCommit = true;
                log.warn("pglease: synchronous_commit is '{}' for this role/database; pglease sets it to 'on' for "
                        + "its own lease connection so that an acknowledged grant is durable", synchronousCommit);
            }
            return true;
        }
        return false;
    }

    /** The synchronous_commit setting of the lease connection's session (for tests and diagnostics). */
    synchronized String sessionSynchronousCommit() throws SQLException {
        return sql.durabilitySettings(connection())[0];
    }

    private void discard() {
        Connection c = connection;
        connection = null;
        if (c != null) {
            closeQuietly(c);
        }
    }

    private static void closeQuietly(Connection c) {
        try {
            c.close();
        } catch (SQLException | RuntimeException e) {
            log.debug("pglease: closing a broken connection failed", e);
        }
    }

    @Override
    public synchronized void close() {
        Connection c = connection;
        connection = null;
        if (c == null) {
            return;
        }
        if (synchronousCommitRaised) {
            try {
                sql.resetSynchronousCommit(c);
            } catch (SQLException e) {
                log.debug("pglease: could not reset synchronous_commit", e);
            }
        }
        closeQuietly(c);
    }
}
