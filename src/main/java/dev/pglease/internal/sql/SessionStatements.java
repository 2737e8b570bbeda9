package dev.pglease.internal.sql;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * The settings of the sessions pglease opens or borrows: durability, the server-side timeouts of lease statements,
 * their reset before a connection goes back to its pool, and LISTEN on the schema's channel.
 */
public final class SessionStatements {

    private SessionStatements() {}

    /** The server's durability settings as this session sees them: {@code synchronous_commit} and {@code fsync}. */
    public record Durability(String synchronousCommit, String fsync) {}

    public static Durability durability(Connection c) throws SQLException {
        try (PreparedStatement ps =
                        c.prepareStatement("SELECT current_setting('synchronous_commit'), current_setting('fsync')");
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            return new Durability(rs.getString(1), rs.getString(2));
        }
    }

    /** Raises {@code synchronous_commit} to {@code on} for the session. */
    public static void setSynchronousCommitOn(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SET synchronous_commit = on")) {
            ps.execute();
        }
    }

    /**
     * Inside an open transaction: raises {@code synchronous_commit} to {@code on} for this transaction only, and
     * only where the session would otherwise acknowledge a commit before it is durable ({@code off}, {@code local}).
     */
    public static void raiseSynchronousCommitLocally(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                SELECT set_config('synchronous_commit', 'on', true)
                 WHERE current_setting('synchronous_commit') IN ('off', 'local')
                """);
                ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
                rs.getString(1);
            }
        }
    }

    /**
     * Makes the server give up on a lease statement after {@code millis} (waiting for a lock, or at all), so that
     * it never commits after its client stopped waiting for the answer.
     */
    public static void setStatementTimeouts(Connection c, long millis) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT set_config('lock_timeout', ?, false), set_config('statement_timeout', ?, false)")) {
            ps.setString(1, millis + "ms");
            ps.setString(2, millis + "ms");
            Rows.one(ps);
        }
    }

    /**
     * The same as {@link #setStatementTimeouts} and a durable commit, for the current transaction only: lease
     * statements that keep the session unchanged run in a transaction of their own with these. The server also ends
     * the session when the transaction is left idle for {@code millis}: a client stalled or cut off between its lease
     * statement and the commit would otherwise keep the lease rows locked, and every other candidate's acquire
     * waiting, until it comes back or TCP gives up.
     */
    public static void setTransactionTimeouts(Connection c, long millis) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                SELECT set_config('lock_timeout', ?, true), set_config('statement_timeout', ?, true),
                       set_config('idle_in_transaction_session_timeout', ?, true),
                       CASE WHEN current_setting('synchronous_commit') IN ('off', 'local')
                            THEN set_config('synchronous_commit', 'on', true) END
                """)) {
            ps.setString(1, millis + "ms");
            ps.setString(2, millis + "ms");
            ps.setString(3, millis + "ms");
            Rows.one(ps);
        }
    }

    /**
     * The settings of the lease session whatever the role's defaults are: the server gives up on a lease statement
     * after {@code millis} (see {@link #setStatementTimeouts}), and never ends the session for being idle between
     * renewals ({@code idle_session_timeout}, PostgreSQL 14+) or idle in a transaction: with fast failover a standby
     * takes the lease over the moment the session ends.
     */
    public static void setLeaseSessionSettings(Connection c, long millis) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                SELECT set_config('lock_timeout', ?, false), set_config('statement_timeout', ?, false),
                       set_config('idle_in_transaction_session_timeout', '0', false),
                       (SELECT set_config(name, '0', false) FROM pg_settings WHERE name = 'idle_session_timeout')
                """)) {
            ps.setString(1, millis + "ms");
            ps.setString(2, millis + "ms");
            Rows.one(ps);
        }
    }

    /**
     * The settings of a session that waits on purpose (a blocking advisory lock request, LISTEN), whatever the
     * role's defaults are: no statement or lock timeout cancels the wait, and no idle timeout ends the session.
     */
    public static void setWaitingSessionSettings(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                SELECT set_config('lock_timeout', '0', false), set_config('statement_timeout', '0', false),
                       set_config('idle_in_transaction_session_timeout', '0', false),
                       (SELECT set_config(name, '0', false) FROM pg_settings WHERE name = 'idle_session_timeout')
                """)) {
            Rows.one(ps);
        }
    }

    /**
     * Puts back every session setting pglease may have changed (to the role's and database's defaults), before the
     * connection returns to a pool. Settings the server does not have are skipped.
     */
    public static void resetSessionSettings(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                SELECT count(set_config(name, reset_val, false))
                  FROM pg_settings
                 WHERE name IN ('synchronous_commit', 'lock_timeout', 'statement_timeout',
                                'idle_in_transaction_session_timeout', 'idle_session_timeout')
                """)) {
            Rows.one(ps);
        }
    }

    /** Gives back every session-level advisory lock of this session: before its connection goes back to a pool. */
    public static void unlockAllAdvisoryLocks(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT pg_advisory_unlock_all()")) {
            Rows.one(ps);
        }
    }

    /** The NOTIFY channel the schema's trigger sends lease changes to: {@code <schema>.leases}. */
    public static String channel(String schema) {
        return schema + ".leases";
    }

    public static void listen(Connection c, String channel) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("LISTEN \"" + channel + "\"")) {
            ps.execute();
        }
    }

    /** Stops listening on every channel: before a connection that listened goes back to its pool. */
    public static void unlistenAll(Connection c) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute("UNLISTEN *");
        }
    }

    /** A round trip that checks an idle connection is alive. */
    public static void ping(Connection c) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute("SELECT 1");
        }
    }

    /** The process id of the server backend serving the session (or, behind a transaction pooler, the transaction). */
    public static int backendPid(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT pg_backend_pid()");
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getInt(1);
        }
    }

    /**
     * Which server session serves this statement: its backend process id and start time (a pid alone could be reused
     * by a later backend). Behind a transaction pooler, the server session of this statement's transaction.
     */
    public static String backendIdentity(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                        "SELECT pg_backend_pid() || '@' || coalesce((SELECT backend_start::text FROM pg_stat_activity"
                                + " WHERE pid = pg_backend_pid()), '')");
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getString(1);
        }
    }
}
