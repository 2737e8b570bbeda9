package dev.pglease.internal.store;

import dev.pglease.LeaseException;
import dev.pglease.internal.sql.SchemaStatements;
import dev.pglease.internal.sql.SqlErrors;
import dev.pglease.internal.util.Secrets;
import java.util.Map;
import javax.sql.DataSource;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.FlywayException;

/**
 * Creates and migrates a pglease schema with Flyway, keeping Flyway's history in the schema itself
 * ({@link SchemaStatements#HISTORY_TABLE}) so that it never collides with the application's own migrations.
 */
public final class SchemaMigration {

    /** Classpath location of the shipped migrations. */
    public static final String LOCATION = "classpath:pglease/db/migration";

    private SchemaMigration() {}

    /**
     * Migrates {@code schema} (validated by the caller), granting to the three roles named (created NOLOGIN when
     * absent and the migrating role may create them).
     *
     * @return the number of migrations applied (0 when up to date)
     * @throws LeaseException DATABASE_UNAVAILABLE, INSUFFICIENT_PRIVILEGE or SCHEMA_MISSING, by the first SQL error
     *                        among the causes
     */
    public static int migrate(
            DataSource dataSource, String schema, String candidateRole, String observerRole, String operatorRole) {
        try {
            return Flyway.configure(SchemaMigration.class.getClassLoader())
                    .dataSource(dataSource)
                    .schemas(schema)
                    .defaultSchema(schema)
                    .createSchemas(true)
                    .table(SchemaStatements.HISTORY_TABLE)
                    .locations(LOCATION)
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
                    "could not migrate schema " + schema + ": " + Secrets.redact(e.getMessage()),
                    e);
        }
    }
}
