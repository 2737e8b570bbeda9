package dev.pglease.internal.store;

import dev.pglease.LeaseException;
import dev.pglease.internal.sql.SchemaStatements;
import dev.pglease.internal.sql.SqlErrors;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Optional;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What {@code PgLease.create} checks before the election starts: how the data sources reach the server (and so how
 * standbys learn of a released lease), and that the schema is migrated, at the version this library needs, and open
 * to the connected role. Each refusal is a {@link LeaseException} that says what to do.
 */
public final class StartupChecks {

    private static final Logger log = LoggerFactory.getLogger(StartupChecks.class);

    private StartupChecks() {}

    /** How standbys learn that a lease was released (chosen at start). */
    public enum NotificationMode {
        /** LISTEN on a connection from the main data source. */
        LISTEN,
        /** LISTEN on a connection from the configured direct data source. */
        LISTEN_DIRECT,
        /** The main data source is transaction-pooled and no direct one is configured: standbys poll. */
        POLLING
    }

    /**
     * How the data sources reach the server.
     *
     * @param transactionPooled whether the main data source goes through a transaction pooler (lease statements then
     *                          carry their settings in their own transactions)
     */
    public record Connections(boolean transactionPooled, NotificationMode notifications) {}

    /**
     * LISTEN needs one server session for the life of the connection, which a transaction pooler does not give:
     * through one, notifications would silently never arrive. So: LISTEN on the main data source when it is not
     * transaction-pooled, else on the direct data source when configured (refused if that one is pooled too), else
     * no LISTEN at all and standbys wake at least every retryPeriod to look. Takes two connections at a time from
     * each data source it looks at.
     *
     * @throws LeaseException UNSUPPORTED_POOLING when the main data source is transaction-pooled and prepares
     *                        statements on the server, or fast failover is asked for, or the direct data source is
     *                        transaction-pooled too
     */
    public static Connections connections(DataSource main, Optional<DataSource> direct, boolean fastFailover)
            throws SQLException {
        boolean pooled = Pooling.transactionPooled(main);
        if (pooled) {
            Pooling.checkPrepareThreshold(main);
            if (fastFailover) {
                throw new LeaseException(
                        LeaseException.Reason.UNSUPPORTED_POOLING,
                        "LeaseConfig.fastFailover "
                                + "needs session-level advisory locks held on one server session for as long as a lease is "
                                + "held, and the data source goes through a transaction pooler (one client connection is "
                                + "served by several server sessions). Connect pglease to PostgreSQL itself or to a "
                                + "session-pooled port, or turn fastFailover off");
            }
        }
        if (direct.isPresent()) {
            if (Pooling.transactionPooled(direct.get())) {
                throw new LeaseException(
                        LeaseException.Reason.UNSUPPORTED_POOLING,
                        "LeaseConfig.directDataSource "
                                + "goes through a transaction pooler too (one client connection is served by several "
                                + "server sessions), so LISTEN on it would never deliver a notification. Point it at "
                                + "PostgreSQL itself or at a session-pooled port, or leave it unset to poll");
            }
            return new Connections(pooled, NotificationMode.LISTEN_DIRECT);
        }
        return new Connections(pooled, pooled ? NotificationMode.POLLING : NotificationMode.LISTEN);
    }

    /**
     * Checks that the connected role may campaign in {@code schema} (first: without USAGE on the schema nothing else
     * can be looked at), that the schema is migrated, and that it is at {@link SchemaStatements#SCHEMA_VERSION}; warns
     * when the server hides its timeline or identity from the schema's owner (tokens then survive fewer failovers).
     *
     * @throws LeaseException INSUFFICIENT_PRIVILEGE or SCHEMA_MISSING, saying what to grant or to run
     */
    public static void checkSchema(Connection c, String schema) throws SQLException {
        Privileges.check(c, schema);
        SchemaStatements statements = new SchemaStatements(schema);
        if (!statements.exists(c)) {
            throw new LeaseException(
                    LeaseException.Reason.SCHEMA_MISSING,
                    "schema " + schema
                            + " has no pglease tables: have the schema owner migrate it (not this application's"
                            + " login): `pglease migrate --schema " + schema
                            + "` or PgLease.migrate(ownerDataSource, \""
                            + schema + "\"); see docs/troubleshooting.md");
        }
        checkVersion(c, schema, statements);
        statements.hiddenTermSources(c).ifPresent(hidden -> log.warn("pglease: {}", hidden));
    }

    /**
     * Refuses a schema older or newer than {@link SchemaStatements#SCHEMA_VERSION}, read with
     * {@code schema_version()}, which every pglease role may call (no access to Flyway's history table needed).
     */
    private static void checkVersion(Connection c, String schema, SchemaStatements statements) throws SQLException {
        int needed = SchemaStatements.SCHEMA_VERSION;
        if (!statements.hasSchemaVersion(c)) {
            throw outdated(schema, "older than version " + needed + " (it has no schema_version())");
        }
        int version;
        try {
            version = statements.schemaVersion(c);
        } catch (SQLException e) {
            if (SqlErrors.insufficientPrivilege(e)) {
                String user = SchemaStatements.currentUser(c);
                throw new LeaseException(
                        LeaseException.Reason.INSUFFICIENT_PRIVILEGE,
                        "the database role " + user
                                + " lacks EXECUTE ON FUNCTION " + schema
                                + ".schema_version(), which every pglease role has: "
                                + "GRANT " + schema + "_candidate TO " + user
                                + "; (or the candidate role named when the "
                                + "schema was migrated)",
                        e);
            }
            throw e;
        }
        if (version < needed) {
            throw outdated(schema, "at version " + version + ", this pglease needs " + needed);
        }
        if (version > needed) {
            throw new LeaseException(
                    LeaseException.Reason.SCHEMA_MISSING,
                    "the pglease schema " + schema + " is at "
                            + "version " + version + ", newer than this pglease, which needs version " + needed
                            + ": run the "
                            + "pglease release that migrated it (or a later one), or point this one at a schema of version "
                            + needed);
        }
    }

    private static LeaseException outdated(String schema, String what) {
        return new LeaseException(
                LeaseException.Reason.SCHEMA_MISSING,
                "the pglease schema " + schema + " is "
                        + what + ": have the schema owner migrate it (`pglease migrate --schema " + schema
                        + "`, or PgLease.migrate(dataSource, \"" + schema + "\"))");
    }
}
