package dev.pglease.internal.store;

import dev.pglease.LeaseException;
import dev.pglease.internal.sql.SessionStatements;
import java.sql.Connection;
import java.sql.SQLException;
import javax.sql.DataSource;
import org.postgresql.PGConnection;

/**
 * Finds out at start whether a data source reaches PostgreSQL through a transaction pooler (PgBouncer in
 * {@code pool_mode=transaction} or {@code statement}), where a client connection is not one server session: each
 * transaction may run on another server connection, so LISTEN, session settings and session advisory locks do not
 * stay with the client connection.
 *
 * <p>The sign is the backend process id. Directly or through a session pooler, an open connection keeps its
 * backend for its whole life and two open connections never share one. Through a transaction pooler, two open
 * client connections can be served by the same backend (PgBouncer hands the most recently used idle server
 * connection out first), and one client connection can be served by several.
 */
public final class Pooling {

    /** Rounds of the check; a transaction pooler is normally seen in the first. */
    private static final int ROUNDS = 2;

    private Pooling() {}

    /**
     * Whether {@code dataSource} is transaction-pooled. Takes two connections from it at the same time and runs
     * a few {@code SELECT pg_backend_pid()} in autocommit on them.
     */
    public static boolean transactionPooled(DataSource dataSource) throws SQLException {
        try (Connection a = dataSource.getConnection();
                Connection b = dataSource.getConnection()) {
            a.setAutoCommit(true);
            b.setAutoCommit(true);
            int first = backendPid(a);
            for (int round = 0; round < ROUNDS; round++) {
                int other = backendPid(b);
                int again = backendPid(a);
                if (other == first || other == again || again != first) {
                    return true;
                }
            }
            return false;
        }
    }

    /**
     * Refuses a transaction-pooled connection that would prepare statements on the server: pgjdbc switches a
     * statement to a named server-side prepared statement after {@code prepareThreshold} uses, and that statement
     * exists only on the server connection that happened to serve the transaction, so later uses fail with
     * "prepared statement does not exist".
     */
    public static void checkPrepareThreshold(DataSource dataSource) throws SQLException {
        try (Connection c = dataSource.getConnection()) {
            if (!c.isWrapperFor(PGConnection.class)) {
                return;
            }
            int threshold = c.unwrap(PGConnection.class).getPrepareThreshold();
            if (threshold > 0) {
                throw new LeaseException(
                        LeaseException.Reason.UNSUPPORTED_POOLING,
                        "the data source goes through a "
                                + "transaction pooler (one client connection is served by several server sessions) and "
                                + "pgjdbc's prepareThreshold is " + threshold + ": after " + threshold
                                + " uses a statement "
                                + "becomes a server-side prepared statement that the next server session does not have. "
                                + "Add prepareThreshold=0 to the JDBC URL of this data source (allowed: 0)");
            }
        }
    }

    private static int backendPid(Connection c) throws SQLException {
        return SessionStatements.backendPid(c);
    }
}
