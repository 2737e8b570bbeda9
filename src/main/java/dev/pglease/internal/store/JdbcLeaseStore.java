package dev.pglease.internal.store;

import dev.pglease.LeaseException;
import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.sql.SessionStatements;
import dev.pglease.internal.sql.SqlErrors;
import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Transactions;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.function.LongConsumer;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs lease statements on one dedicated connection taken from the application's {@link DataSource}. The
 * connection is set up for durable commits, a network timeout, and server-side statement and lock timeouts below
 * it (so a statement the client gave up on never commits later): for the session, with no idle timeout of the role
 * ending it, when it must be one server session (fast failover); otherwise in each statement's own transaction, so
 * that nothing is left on a server session that a transaction pooler may hand to another client. It is
 * replaced after any error but a server-side timeout, and goes back to the pool with every session setting reset,
 * whether it is closed or dropped after an error; one whose session is gone or in doubt, or whose reset failed, is
 * aborted instead (a pool then discards it). A session that may hold session-level advisory locks (fast failover)
 * never goes back holding one: it gives them back first, or is aborted.
 */
public final class JdbcLeaseStore implements LeaseStore {

    private static final Logger log = LoggerFactory.getLogger(JdbcLeaseStore.class);
    private static final String WARM_UP_HOLDER = "pglease warm-up";
    /** Dead pooled connections skipped when opening the lease connection before the error is reported. */
    private static final int MAX_DEAD_POOLED_CONNECTIONS = 16;

    private final DataSource dataSource;
    private final LeaseStatements sql;
    private final int networkTimeoutMillis;
    private final long statementTimeoutMillis;
    private final boolean allowUnsafeDurability;
    private Connection connection;
    /** Counts the lease connections opened: a new number means a new database session. */
    private long session;
    /** The session that was warmed for its first grant (0: none yet). */
    private long warmedSession;

    /** Lease groups' additions to the statements ({@code null}: none). */
    private volatile LeaseConnectionHooks hooks;

    private boolean warnedSynchronousCommit;
    private boolean closed;
    private boolean transactionScoped;
    /** Whether the data source was found to go through a transaction pooler (no warm-up then). */
    private boolean pooled;
    /** Whether the lease session may hold session-level advisory locks (fast failover). */
    private boolean sessionLocks;
    /** Told the number of a lease session that ended (its connection was dropped or replaced). */
    private LongConsumer onSessionEnded = session -> {};

    /**
     * @param networkTimeout   how long the client waits for any answer before it drops the connection
     * @param statementTimeout how long the server may work on (or wait for a lock for) one lease statement; must be
     *                         shorter than {@code networkTimeout}
     */
    public JdbcLeaseStore(
            DataSource dataSource,
            LeaseStatements sql,
            Duration networkTimeout,
            Duration statementTimeout,
            boolean allowUnsafeDurability) {
        if (statementTimeout.compareTo(networkTimeout) >= 0) {
            throw new IllegalArgumentException("the statement timeout (" + statementTimeout + ") must be shorter than "
                    + "the network timeout (" + networkTimeout + ")");
        }
        this.dataSource = dataSource;
        this.sql = sql;
        this.networkTimeoutMillis = (int) Math.max(1, Math.min(Integer.MAX_VALUE, networkTimeout.toMillis()));
        this.statementTimeoutMillis = Math.max(1, statementTimeout.toMillis());
        this.allowUnsafeDurability = allowUnsafeDurability;
    }

    @Override
    public synchronized Acquired acquire(String name, String holder, Duration ttl) throws SQLException {
        Connection c = connection();
        Acquired answer;
        try {
            begin(c);
            LeaseConnectionHooks h = hooks;
            answer = commit(
                    c,
                    h == null ? sql.acquire(c, name, holder, ttl) : sql.acquire(c, name, holder, ttl, h.kindOf(name)));
        } catch (SQLException | RuntimeException e) {
            throw failed(c, "acquire of lease", name, e);
        }
        // not when the answer names this holder: the loop releases that unknown grant at once
        if (!answer.granted() && !holder.equals(answer.holder()) && warmedSession != session && !pooled) {
            warmUp();
        }
        return answer;
    }

    @Override
    public synchronized Renewal renew(String holder, List<Held> leases) throws SQLException {
        Connection c = connection();
        try {
            begin(c);
            LeaseConnectionHooks h = hooks;
            return commit(c, h == null ? sql.renew(c, holder, leases) : h.renew(c, holder, leases, sql));
        } catch (SQLException | RuntimeException e) {
            throw failed(c, "renewal", null, e);
        }
    }

    @Override
    public synchronized boolean release(String name, String holder, long token) throws SQLException {
        Connection c = connection();
        try {
            begin(c);
            return commit(c, sql.release(c, name, holder, token));
        } catch (SQLException | RuntimeException e) {
            throw failed(c, "release of lease", name, e);
        }
    }

    /** Installs what lease groups add to the acquire and renew statements. */
    public void hooks(LeaseConnectionHooks hooks) {
        this.hooks = hooks;
    }

    /** The kind of lease {@code name}: a shard of a lease group this process is a member of, or an election. */
    LeaseStatements.Kind kindOf(String name) {
        LeaseConnectionHooks h = hooks;
        return h == null ? LeaseStatements.Kind.ELECTION : h.kindOf(name);
    }

    /** On {@code c} (the lease connection, in {@link #onLeaseSession}): what the hooks take before a shard's acquire. */
    void beforeShardAcquire(Connection c, String holder) throws SQLException {
        LeaseConnectionHooks h = hooks;
        if (h != null) {
            h.beforeShardAcquire(c, holder);
        }
    }

    /**
     * On {@code c} (the lease connection, in {@link #onLeaseSession}): renews {@code leases} with what the hooks add
     * (member rows), in one statement; with no hooks and no lease, nothing.
     */
    Renewal renewOnSession(Connection c, String holder, List<Held> leases) throws SQLException {
        LeaseConnectionHooks h = hooks;
        if (h != null) {
            return h.renew(c, holder, leases, sql);
        }
        return leases.isEmpty() ? new Renewal(List.of()) : sql.renew(c, holder, leases);
    }

    @Override
    public synchronized List<Fact> read(Collection<String> names) throws SQLException {
        Connection c = connection();
        try {
            begin(c);
            return commit(c, sql.read(c, names));
        } catch (SQLException | RuntimeException e) {
            throw failed(c, "read of " + names.size() + " leases", null, e);
        }
    }

    /**
     * The lease session may hold session-level advisory locks from now on: it is never handed back to the pool
     * holding one, and {@code onSessionEnded} is told the number of every session that is dropped or replaced.
     */
    synchronized void holdsSessionLocks(LongConsumer onSessionEnded) {
        this.sessionLocks = true;
        this.onSessionEnded = onSessionEnded;
    }

    /**
     * Settings for each statement's own transaction instead of the session: for a data source behind a transaction
     * pooler, where a session setting would land on whichever server session served it (and stay there for the
     * next client) while the next statement may run on another.
     */
    public synchronized void useTransactionScopedSettings() {
        pooled = true;
        keepSessionUnchanged();
    }

    /**
     * Settings for each statement's own transaction instead of the session, for any data source whose lease session
     * need not be one server session (no fast failover): should a transaction pooler the start-up check could not
     * see (several poolers behind a balancer) serve it after all, no setting of pglease is left on a server session
     * that the pooler's other clients get next. Costs two more round trips per statement (the settings, the commit).
     */
    public synchronized void keepSessionUnchanged() {
        transactionScoped = true;
        discard();
    }

    /**
     * Starts one lease statement: alone in auto-commit, or behind a transaction pooler in a transaction with its
     * settings. Each statement method is begin(), the statement, commit(), and failed() for any exception, written
     * out rather than passed as a lambda so that a process's first release (its hand-off) or first grant links no
     * call site.
     */
    private void begin(Connection c) throws SQLException {
        if (transactionScoped) {
            SessionStatements.setTransactionTimeouts(c, statementTimeoutMillis);
        }
    }

    private <T> T commit(Connection c, T result) throws SQLException {
        if (transactionScoped) {
            c.commit();
        }
        return result;
    }

    /**
     * After a lease statement failed: rolls back (transaction-scoped), drops the connection unless the server only
     * timed the statement out, and returns the SQLException to throw (a RuntimeException is rethrown as is).
     */
    private SQLException failed(Connection c, String what, String name, Exception e) {
        if (e instanceof SQLException sqlException) {
            if (transactionScoped) {
                Transactions.rollbackQuietly(c, sqlException);
            }
            discardUnlessTimedOut(sqlException);
            return readOnlyAsOwnReason(name == null ? what : what + " " + Names.quote(name), sqlException);
        }
        discard();
        throw (RuntimeException) e;
    }

    /**
     * A statement refused by a read-only server (a standby in recovery) becomes a {@link LeaseException} with reason
     * DATABASE_READ_ONLY, so that the loop and observers report it as such and never as a lost lease.
     */
    private static SQLException readOnlyAsOwnReason(String what, SQLException e) {
        if (SqlErrors.readOnly(e)) {
            throw SqlErrors.readOnlyFailure(what, e);
        }
        return e;
    }

    /** Statements run on the lease connection, for mechanisms that need its session (advisory locks). */
    interface SessionWork<T> {
        T run(Connection c, long session) throws SQLException;
    }

    /**
     * Runs {@code work} on the lease connection with the number of its session (see {@link #session}), under the
     * same lock and error handling as the lease statements.
     */
    synchronized <T> T onLeaseSession(SessionWork<T> work) throws SQLException {
        Connection c = connection();
        try {
            return work.run(c, session);
        } catch (SQLException | RuntimeException e) {
            discardUnlessTimedOut(e);
            throw e;
        }
    }

    /** Opens the lease connection now, so that a bad database or unsafe settings are reported at start. */
    public synchronized void verify() throws SQLException {
        connection();
    }

    private Connection connection() throws SQLException {
        if (connection != null) {
            return connection;
        }
        if (closed) {
            throw new LeaseException(LeaseException.Reason.CLOSED, "this PgLease is closed");
        }
        for (int attempt = 1; ; attempt++) {
            Connection c = dataSource.getConnection();
            try {
                c.setNetworkTimeout(Runnable::run, networkTimeoutMillis);
                if (c.getAutoCommit() == transactionScoped) {
                    c.setAutoCommit(!transactionScoped);
                }
                ensureDurable(c);
                if (!transactionScoped) {
                    SessionStatements.setLeaseSessionSettings(c, statementTimeoutMillis);
                }
                connection = c;
                session++;
                return c;
            } catch (SQLException e) {
                if (SqlErrors.sessionGone(e)) {
                    closeQuietly(c);
                } else {
                    giveBack(c, true); // a setting made before the failure does not go back to the pool
                }
                // A pool hands out a connection it used a moment ago without checking it, so after a network blip or
                // a server restart it can hold several whose session is gone; no lease statement has run on one yet,
                // so taking another is safe.
                if (!SqlErrors.sessionGone(e) || attempt == MAX_DEAD_POOLED_CONNECTIONS) {
                    throw e;
                }
                log.debug("pglease: a pooled connection was dead before its first lease statement; taking another", e);
            } catch (RuntimeException e) {
                closeQuietly(c);
                throw e;
            }
        }
    }

    /**
     * Warms this session for its first grant (see {@link LeaseStatements#warmUp}), once per session, after an acquire was
     * denied: a standby does it while it waits, and a leader's renewals never wait for it. Best effort: a role that
     * may not write leases, or a server in recovery, is told so by the real statements; a connection the warm-up
     * broke is replaced before the next statement.
     */
    private void warmUp() {
        warmedSession = session;
        try {
            if (transactionScoped) {
                begin(connection); // the warm-up's transaction carries the statements' timeouts too
            }
            sql.warmUp(connection, WARM_UP_HOLDER);
            if (transactionScoped) {
                connection.setAutoCommit(false);
            }
        } catch (SQLException e) {
            log.debug("pglease: warming up the lease connection failed", e);
            discard(!SqlErrors.sessionGone(e));
        } catch (RuntimeException e) {
            log.debug("pglease: warming up the lease connection failed", e);
            discard();
        }
    }

    /** Refuses fsync=off (unless allowed) and raises synchronous_commit to on for this session. */
    private void ensureDurable(Connection c) throws SQLException {
        SessionStatements.Durability settings = SessionStatements.durability(c);
        String synchronousCommit = settings.synchronousCommit().toLowerCase(Locale.ROOT);
        String fsync = settings.fsync().toLowerCase(Locale.ROOT);
        if (fsync.equals("off")) {
            if (!allowUnsafeDurability) {
                throw new LeaseException(
                        LeaseException.Reason.UNSAFE_DURABILITY,
                        "the server runs with fsync=off: a crash can lose an acknowledged grant and hand the same "
                                + "token to two holders. Turn fsync on, or set LeaseConfig.allowUnsafeDurability(true) "
                                + "for a throwaway test database");
            }
            log.warn("pglease: the server runs with fsync=off; acknowledged grants can be lost in a crash "
                    + "(allowed by allowUnsafeDurability)");
        }
        if (transactionScoped) {
            c.commit(); // the check ran in a transaction; every lease statement raises the setting in its own
            return;
        }
        if (synchronousCommit.equals("off") || synchronousCommit.equals("local")) {
            SessionStatements.setSynchronousCommitOn(c);
            if (!warnedSynchronousCommit) {
                warnedSynchronousCommit = true;
                log.warn(
                        "pglease: synchronous_commit is '{}' for this role/database; pglease sets it to 'on' for "
                                + "its own lease connection so that an acknowledged grant is durable",
                        synchronousCommit);
            }
        }
    }

    /** The synchronous_commit setting of the lease connection's session (for tests and diagnostics). */
    public synchronized String sessionSynchronousCommit() throws SQLException {
        return SessionStatements.durability(connection()).synchronousCommit();
    }

    /**
     * A statement the server cancelled (lock_timeout, statement_timeout) leaves a healthy connection; anything else
     * may have broken it. A connection the server answered with another error still goes back to its pool as it
     * came; one whose session is gone or in doubt (no answer) is aborted.
     */
    private void discardUnlessTimedOut(Exception e) {
        if (e instanceof SQLException sqlException) {
            if (SqlErrors.serverTimeout(sqlException)) {
                return;
            }
            discard(!SqlErrors.sessionGone(sqlException));
            return;
        }
        discard();
    }

    /** Drops the lease connection after an unexpected failure: its session is in doubt, so it is aborted. */
    private void discard() {
        discard(false);
    }

    /**
     * Drops the lease connection. {@code answering}: the server answered its last statement (an ordinary SQL error),
     * so its settings can be put back before it goes back to the pool; otherwise, or when that fails, it is aborted:
     * a pool then discards it rather than hand the next borrower pglease's settings.
     */
    private void discard(boolean answering) {
        Connection c = connection;
        connection = null;
        if (c != null) {
            giveBack(c, answering && !sessionLocks); // one that may hold advisory locks never goes back to a pool
            if (sessionLocks) {
                onSessionEnded.accept(session);
            }
        }
    }

    /**
     * Closes {@code c} (back to its pool) with every session setting pglease changed put back when {@code reset} (and
     * its session advisory locks given back, with fast failover), or aborts it when {@code reset} is false or the
     * reset fails. Behind a transaction pooler pglease sets nothing on the session.
     */
    private void giveBack(Connection c, boolean reset) {
        if (reset) {
            try {
                if (!c.getAutoCommit()) {
                    c.rollback();
                    c.setAutoCommit(true); // as a pool lends it; lease statements ran in transactions of their own
                }
                if (sessionLocks) {
                    SessionStatements.unlockAllAdvisoryLocks(c);
                }
                if (!transactionScoped) {
                    SessionStatements.resetSessionSettings(c);
                }
            } catch (SQLException | RuntimeException e) {
                log.debug("pglease: could not reset the lease connection's session; dropping it", e);
                reset = false;
            }
        }
        if (!reset) {
            abortQuietly(c);
        }
        closeQuietly(c);
    }

    private static void closeQuietly(Connection c) {
        try {
            c.close();
        } catch (SQLException | RuntimeException e) {
            log.debug("pglease: closing a broken connection failed", e);
        }
    }

    private static void abortQuietly(Connection c) {
        try {
            c.abort(Runnable::run);
        } catch (SQLException | RuntimeException e) {
            log.debug("pglease: aborting a connection failed", e);
        }
    }

    @Override
    public synchronized void close() {
        closed = true;
        Connection c = connection;
        connection = null;
        if (c == null) {
            return;
        }
        giveBack(c, true);
        if (sessionLocks) {
            onSessionEnded.accept(session);
        }
    }
}
