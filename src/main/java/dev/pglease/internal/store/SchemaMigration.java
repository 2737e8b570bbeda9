package dev.pglease.internal.store;

import dev.pglease.LeaseException;
import dev.pglease.internal.sql.SchemaStatements;
import dev.pglease.internal.sql.SqlErrors;
import dev.pglease.internal.util.Secrets;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import javax.sql.DataSource;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.FlywayException;
import org.flywaydb.core.internal.exception.FlywayMigrateException;
import org.postgresql.util.PSQLException;
import org.postgresql.util.ServerErrorMessage;

/**
 * Creates and migrates a pglease schema with Flyway, keeping Flyway's history in the schema itself
 * ({@link SchemaStatements#HISTORY_TABLE}) so that it never collides with the application's own migrations.
 *
 * <p>All or nothing: the pending migrations run in one transaction, so a failure leaves the schema as it was. A
 * refusal is reported at once, with what to grant: the rights the migration needs (create the schema or own it,
 * create the roles it grants to) are checked from the catalog first, and the schema is created here (Flyway would
 * retry a refused creation for ten seconds and then report only "Unable to create schema"); an error of the
 * migration itself is reported in PostgreSQL's words, with its hint. Nothing is retried but the wait for another
 * migration of the same schema.
 */
public final class SchemaMigration {

    /** Classpath location of the shipped migrations. */
    public static final String LOCATION = "classpath:pglease/db/migration";

    /** How long to wait, in seconds, for another migration of the same schema that holds Flyway's lock. */
    static final int LOCK_WAIT_SECONDS = 60;

    private SchemaMigration() {}

    /**
     * Migrates {@code schema} (validated by the caller), granting to the three roles named (created NOLOGIN when
     * absent and the migrating role may create them).
     *
     * @return the number of migrations applied (0 when up to date)
     * @throws LeaseException DATABASE_UNAVAILABLE, INSUFFICIENT_PRIVILEGE or SCHEMA_MISSING, by the first SQL error
     *                        among the causes, with its message, hint and what to do
     */
    public static int migrate(
            DataSource dataSource, String schema, String candidateRole, String observerRole, String operatorRole) {
        return migrate(dataSource, schema, candidateRole, observerRole, operatorRole, List.of(LOCATION));
    }

    /** {@link #migrate(DataSource, String, String, String, String)} from these locations. */
    static int migrate(
            DataSource dataSource,
            String schema,
            String candidateRole,
            String observerRole,
            String operatorRole,
            List<String> locations) {
        prepare(
                dataSource,
                schema,
                List.of(candidateRole, observerRole, operatorRole),
                List.of("candidate", "observer", "operator"));
        try {
            return Flyway.configure(SchemaMigration.class.getClassLoader())
                    .dataSource(dataSource)
                    .schemas(schema)
                    .defaultSchema(schema)
                    .createSchemas(false)
                    .connectRetries(0)
                    .lockRetryCount(LOCK_WAIT_SECONDS)
                    .group(true)
                    .table(SchemaStatements.HISTORY_TABLE)
                    .locations(locations.toArray(String[]::new))
                    .placeholders(Map.of(
                            "candidate_role", candidateRole,
                            "observer_role", observerRole,
                            "operator_role", operatorRole))
                    .load()
                    .migrate()
                    .migrationsExecuted;
        } catch (FlywayException e) {
            throw new LeaseException(
                    SqlErrors.migrationFailure(e),
                    "could not migrate schema " + schema + ": " + cause(e)
                            + "; nothing of this migration was applied (the pending migrations run in one "
                            + "transaction)",
                    e);
        }
    }

    /**
     * Before Flyway runs: checks from the catalog that the migrating role may create the schema (or owns it) and the
     * roles, and reports every refusal at once, in one message with what to grant; then creates the schema, owned by
     * that role, unless it exists.
     */
    private static void prepare(DataSource dataSource, String schema, List<String> roles, List<String> kinds) {
        SchemaStatements statements = new SchemaStatements(schema);
        try (Connection c = dataSource.getConnection()) {
            SchemaStatements.MigrationRights rights = statements.migrationRights(c);
            String user = rights.user();
            List<String> refusals = new ArrayList<>();
            if (rights.exists() && !rights.owns()) {
                refusals.add("schema " + schema + " belongs to role " + rights.owner() + ", and " + user
                        + " does not have its rights: migrate as " + rights.owner() + " (or a member of it); only "
                        + "if " + user + " is meant to own the schema (never an application's login: the owner "
                        + "bypasses every guard), make it the owner (ALTER SCHEMA " + schema + " OWNER TO " + user
                        + ")");
            }
            if (!rights.exists() && !rights.mayCreateSchemas()) {
                refusals.add("permission denied for database " + rights.database() + ": " + user + " may not "
                        + "create schema " + schema + ". The role that migrates owns the schema: it needs CREATE on "
                        + "the database (GRANT CREATE ON DATABASE " + rights.database() + " TO " + user + "), or "
                        + "a schema it owns made for it (CREATE SCHEMA " + schema + " AUTHORIZATION " + user + ")");
            }
            List<String> missing = SchemaStatements.missingRoles(c, roles);
            if (!missing.isEmpty() && !SchemaStatements.mayCreateRoles(c)) {
                refusals.add(missingRoles(schema, user, roles, kinds, missing));
            }
            if (!refusals.isEmpty()) {
                throw new LeaseException(
                        LeaseException.Reason.INSUFFICIENT_PRIVILEGE,
                        "could not migrate schema " + schema + ": " + String.join("; and ", refusals)
                                + ". Nothing was changed");
            }
            if (!rights.exists()) {
                statements.createSchema(c);
            }
        } catch (SQLException e) {
            throw SqlErrors.connectionFailure(e)
                    ? SqlErrors.unavailable("could not migrate schema " + schema, e)
                    : new LeaseException(
                            SqlErrors.migrationFailure(e),
                            "could not migrate schema " + schema + ": " + serverMessage(e),
                            e);
        }
    }

    /**
     * The roles error, in the words of the migration's own check (which stays, for those who apply the SQL by other
     * means), one sentence per role, then what to do.
     */
    private static String missingRoles(
            String schema, String user, List<String> roles, List<String> kinds, List<String> missing) {
        List<String> sentences = new ArrayList<>();
        StringBuilder create = new StringBuilder();
        for (String role : missing) {
            sentences.add("role " + role + " (the " + kinds.get(roles.indexOf(role)) + " role of schema " + schema
                    + ") does not exist and " + user + " may not create it");
            create.append(create.length() == 0 ? "" : " ")
                    .append("CREATE ROLE ")
                    .append(role)
                    .append(" NOLOGIN;");
        }
        boolean one = missing.size() == 1;
        return String.join("; ", sentences) + ". Create " + (one ? "it" : "them") + " first (" + create
                + "), migrate as a role with CREATEROLE, or name existing roles (pglease migrate "
                + "--candidate-role/--observer-role/--operator-role, or PgLease.migrate(dataSource, schema, roles))";
    }

    /** The first SQL error behind a Flyway failure, in PostgreSQL's words, and the migration it stopped. */
    private static String cause(FlywayException e) {
        String where = e instanceof FlywayMigrateException m && m.getMigration() != null
                ? " (in " + m.getMigration().getScript() + ")"
                : "";
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof SQLException s) {
                return serverMessage(s) + where;
            }
        }
        return Secrets.redact(firstLine(e.getMessage())) + where;
    }

    /** Message, detail and hint of a server error, on one line, with its SQLState. */
    private static String serverMessage(SQLException e) {
        ServerErrorMessage m = e instanceof PSQLException p ? p.getServerErrorMessage() : null;
        if (m == null || m.getMessage() == null) {
            return Secrets.redact(firstLine(e.getMessage())) + " (SQLState " + e.getSQLState() + ")";
        }
        StringBuilder b = new StringBuilder(m.getMessage());
        if (m.getDetail() != null) {
            b.append(" (").append(m.getDetail()).append(')');
        }
        if (m.getHint() != null) {
            b.append(". Hint: ").append(m.getHint());
        }
        b.append(" (SQLState ").append(e.getSQLState()).append(')');
        return Secrets.redact(b.toString().replaceAll("\\s*\\R\\s*", " "));
    }

    private static String firstLine(String message) {
        String m = String.valueOf(message).strip();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl).strip();
    }
}
