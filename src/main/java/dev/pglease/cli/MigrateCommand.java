package dev.pglease.cli;

import dev.pglease.LeaseException;
import dev.pglease.PgLease;
import dev.pglease.internal.sql.SchemaStatements;
import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.SQLException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code pglease migrate}: creates or upgrades the pglease schema with Flyway. */
@Command(
        name = "migrate",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Create or upgrade the pglease schema.",
            "Applies the pglease migrations (tables, functions, triggers, views) with Flyway, keeping "
                    + "Flyway's history in <schema>." + PgLease.HISTORY_TABLE + ", apart from the application's "
                    + "own migrations. Safe to run again: it applies only what is missing, all or nothing.",
            "Run it as the role that is to own the schema (never the applications' login: the owner bypasses "
                    + "every guard). It needs CREATE on the database, or an existing schema it owns, and CREATEROLE "
                    + "unless the three roles exist.",
            "",
            "Example: pglease migrate --schema pglease"
        },
        footer = {"", ExitCodes.EXIT_CODES_1, ExitCodes.EXIT_CODES_2})
final class MigrateCommand extends OperatorCommand {

    @Option(
            names = "--candidate-role",
            paramLabel = "ROLE",
            description = "Role of the candidates (default: <schema>_candidate; created NOLOGIN when missing).")
    String candidateRole;

    @Option(
            names = "--observer-role",
            paramLabel = "ROLE",
            description = "Role of those who only look (default: <schema>_observer).")
    String observerRole;

    @Option(
            names = "--operator-role",
            paramLabel = "ROLE",
            description = "Role of the operators: release and handoff (default: <schema>_operator).")
    String operatorRole;

    @Override
    int execute(PrintWriter out) throws CliFailure {
        String schema = db.schema();
        PgLease.Roles defaults = PgLease.Roles.defaultsFor(schema);
        PgLease.Roles roles;
        try {
            roles = new PgLease.Roles(
                    candidateRole == null ? defaults.candidate() : candidateRole,
                    observerRole == null ? defaults.observer() : observerRole,
                    operatorRole == null ? defaults.operator() : operatorRole);
        } catch (IllegalArgumentException e) {
            throw new CliFailure(ExitCodes.USAGE, e.getMessage());
        }
        try (Connection probe = db.connect()) {
            // fail fast with exit code 3 when the database can not be reached
            probe.isValid(1);
        } catch (SQLException e) {
            throw db.unreachable(e);
        }
        quietLibraryLogs();
        int applied;
        try {
            applied = PgLease.migrate(db.dataSource(), schema, roles);
        } catch (LeaseException e) {
            int code = e.reason() == LeaseException.Reason.DATABASE_UNAVAILABLE
                    ? ExitCodes.DATABASE_UNREACHABLE
                    : ExitCodes.FAILED;
            throw new CliFailure(code, DatabaseOptions.oneLine(e.getMessage()), e);
        }
        String version = version(schema);
        if (applied == 0) {
            out.println("schema " + schema + " is up to date (version " + version + ")");
        } else {
            out.println("migrated schema " + schema + ": applied " + applied + " migration" + (applied == 1 ? "" : "s")
                    + ", now at version " + version);
        }
        return ExitCodes.OK;
    }

    private String version(String schema) throws CliFailure {
        try (Connection c = db.connect()) {
            return new SchemaStatements(schema).migratedVersion(c).orElse("?");
        } catch (SQLException e) {
            throw db.failure("could not read the schema version", e);
        }
    }

    /** Flyway logs every step at INFO; the command prints its own one-line outcome. */
    static void quietLibraryLogs() {
        if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) {
            System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
        }
    }
}
