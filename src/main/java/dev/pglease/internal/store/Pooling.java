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
 * <p>The sign is the server session's identity (backend process id and start time), read in several autocommit
 * statements. Directly or through a session pooler, an open connection keeps its server session for its whole life
 * and two open connections never share one. Through a transaction pooler, each transaction is handed whichever
 * server connection the pooler picks: the most recently used one (PgBouncer's default), so a second client
 * connection gets the first one's server session, or the least recently used one ({@code server_round_robin = 1}),
 * so two statements in a row of one client connection run on two server sessions. The check runs statements in a
 * row on one connection and between them on another, which shows either choice, and any other that does not pin a
 * client connection to one server session. Several poolers behind a balancer (each new client connection to another
 * pooler) serve two connections from two poolers, each from one server session while nothing else runs there; so
 * the check then takes a few more connections, one at a time, while the first stays open: one that lands on the
 * first one's pooler is served by the first one's idle server session. It holds at most two connections at a time.
 *
 * <p>A balancer that spreads connections over more poolers than that, or a pool in front of the balancer that hands
 * out the same few connections, can still hide the poolers, so the check is not the only guard: without fast failover
 * lease statements carry their settings in their own transactions whatever it finds.
 */
public final class Pooling {

    /** Rounds of the check: two statements in a row on one connection, then one on the other. */
    private static final int ROUNDS = 3;

    /**
     * Connections taken one after another while the first stays open: behind a balancer in front of several poolers
     * (each new connection to the next one), one of them lands on the first connection's pooler, which serves it
     * from the first connection's idle server session. Round robin over up to this many + 1 poolers is always found.
     */
    private static final int LATER_CONNECTIONS = 4;

    private Pooling() {}

    /**
     * Whether {@code dataSource} is transaction-pooled. Takes two connections from it at the same time and runs a few
     * autocommit statements on them that read the server session's identity: each connection must keep one for all
     * its statements, and the two must differ; then, with the second closed and the first still open, the same with a
     * few more connections taken one at a time. Leaves nothing on the sessions.
     */
    public static boolean transactionPooled(DataSource dataSource) throws SQLException {
        try (Connection a = dataSource.getConnection()) {
            a.setAutoCommit(true);
            String first = identity(a);
            try (Connection b = dataSource.getConnection()) {
                b.setAutoCommit(true);
                String other = identity(b);
                if (other.equals(first)) {
                    return true;
                }
                for (int round = 0; round < ROUNDS; round++) {
                    if (!identity(a).equals(first)
                            || !identity(a).equals(first)
                            || !identity(b).equals(other)) {
                        return true;
                    }
                }
            }
            for (int probe = 0; probe < LATER_CONNECTIONS; probe++) {
                try (Connection later = dataSource.getConnection()) {
                    later.setAutoCommit(true);
                    String own = identity(later);
                    if (own.equals(first)
                            || !identity(later).equals(own)
                            || !identity(a).equals(first)) {
                        return true;
                    }
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

    private static String identity(Connection c) throws SQLException {
        return SessionStatements.backendIdentity(c);
    }
}
