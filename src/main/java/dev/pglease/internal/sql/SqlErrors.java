package dev.pglease.internal.sql;

import dev.pglease.LeaseException;
import dev.pglease.internal.util.Secrets;
import java.sql.SQLException;

/**
 * What a failed statement means, by its SQLState, in one place: a read-only server, a server-side timeout, a session
 * that is gone, a missing privilege; and the {@link LeaseException} each becomes.
 */
public final class SqlErrors {

    private SqlErrors() {}

    /**
     * Whether the server refused a statement because it is read-only: a standby in recovery (lease statements fail
     * there with SQLSTATE 25006, or 55000 from a WAL function), or a read-only transaction.
     */
    public static boolean readOnly(SQLException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof SQLException s) {
                String state = s.getSQLState();
                if ("25006".equals(state)
                        || ("55000".equals(state)
                                && String.valueOf(s.getMessage()).contains("recovery"))) {
                    return true;
                }
            }
        }
        return false;
    }

    /** The failure a read-only server causes, as its own reason: never reported as a lost lease. */
    public static LeaseException readOnlyFailure(String what, SQLException e) {
        return new LeaseException(
                LeaseException.Reason.DATABASE_READ_ONLY,
                what + ": the database is read-only (in "
                        + "recovery: a standby, or a primary being demoted); lease statements need the primary: "
                        + Secrets.redact(String.valueOf(e.getMessage())) + " (SQLState " + e.getSQLState() + ")",
                e);
    }

    /**
     * {@code what} failed for {@code e}: DATABASE_READ_ONLY when the server is read-only, DATABASE_UNAVAILABLE
     * otherwise, with the (redacted) message and the SQLState.
     */
    public static LeaseException unavailable(String what, SQLException e) {
        if (readOnly(e)) {
            return readOnlyFailure(what, e);
        }
        return new LeaseException(
                LeaseException.Reason.DATABASE_UNAVAILABLE,
                what + ": " + Secrets.redact(String.valueOf(e.getMessage())) + " (SQLState " + e.getSQLState() + ")",
                e);
    }

    /** SQLSTATE of the schema's fence refusing a token: not the caller's current unexpired grant (PL001). */
    public static final String STALE_FENCE = "PL001";
    /** SQLSTATE of a write to a protected table in a transaction not fenced with the current token (PL002). */
    public static final String UNFENCED_WRITE = "PL002";
    /** SQLSTATE of a lease name asked for as another kind than it is (election, lock, shard) (PL003). */
    public static final String KIND_MISMATCH = "PL003";

    /** The schema refused a fence: the token is not this login's current unexpired grant. */
    public static boolean staleFence(SQLException e) {
        return STALE_FENCE.equals(e.getSQLState());
    }

    /** A protected table refused a write made outside a transaction fenced with the current token. */
    public static boolean unfencedWrite(SQLException e) {
        return UNFENCED_WRITE.equals(e.getSQLState());
    }

    /** The lease name is used as another kind (an election's name taken as a lock, or the reverse). */
    public static boolean kindMismatch(SQLException e) {
        return KIND_MISMATCH.equals(e.getSQLState());
    }

    /** query_canceled (57014): a statement timeout, or a cancel request that reached the statement. */
    public static boolean queryCanceled(SQLException e) {
        return "57014".equals(e.getSQLState());
    }

    /** lock_not_available (55P03) or query_canceled (57014): the server gave up on the statement. */
    public static boolean serverTimeout(SQLException e) {
        return "55P03".equals(e.getSQLState()) || "57014".equals(e.getSQLState());
    }

    /** A connection failure (SQLState class 08): the client could not reach the server, or lost it. */
    public static boolean connectionFailure(SQLException e) {
        String state = e.getSQLState();
        return state != null && state.startsWith("08");
    }

    /**
     * The session behind a connection is gone: a connection failure (08), or the server ended it (57P01 admin
     * shutdown, 57P02 crash shutdown, 57P03 cannot connect now).
     */
    public static boolean sessionGone(SQLException e) {
        String state = e.getSQLState();
        return connectionFailure(e) || "57P01".equals(state) || "57P02".equals(state) || "57P03".equals(state);
    }

    /** insufficient_privilege (42501): the role may not do what the statement asked. */
    public static boolean insufficientPrivilege(SQLException e) {
        return "42501".equals(e.getSQLState());
    }

    /** unique_violation (23505). */
    public static boolean uniqueViolation(SQLException e) {
        return "23505".equals(e.getSQLState());
    }

    /**
     * Why a schema migration failed, from the first SQL error in its causes: DATABASE_UNAVAILABLE for a connection
     * failure, INSUFFICIENT_PRIVILEGE for a missing privilege, SCHEMA_MISSING otherwise.
     */
    public static LeaseException.Reason migrationFailure(Throwable failure) {
        for (Throwable t = failure; t != null; t = t.getCause()) {
            if (t instanceof SQLException e) {
                if (connectionFailure(e)) {
                    return LeaseException.Reason.DATABASE_UNAVAILABLE;
                }
                if (insufficientPrivilege(e)) {
                    return LeaseException.Reason.INSUFFICIENT_PRIVILEGE;
                }
            }
        }
        return LeaseException.Reason.SCHEMA_MISSING;
    }
}
