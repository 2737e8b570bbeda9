package dev.pglease.cli;

import dev.pglease.internal.sql.ProtectionStatements;
import dev.pglease.internal.sql.SchemaStatements;
import dev.pglease.internal.sql.SqlErrors;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Optional;

/** What protect and unprotect check before they act, each refusal with what to do instead. */
final class TableChecks {

    private TableChecks() {}

    /** The table, if it exists, is a table, and the connected role owns it and may use the pglease schema. */
    static ProtectionStatements.Table ownedTable(
            DatabaseOptions db, Connection c, ProtectionStatements statements, String name, String verb)
            throws CliFailure, SQLException {
        if (name.isBlank()) {
            throw new CliFailure(ExitCodes.USAGE, "--table must name a table, e.g. billing.charges");
        }
        if (!new SchemaStatements(db.schema()).migrationRights(c).exists()) {
            throw new CliFailure(
                    ExitCodes.SCHEMA_MISSING,
                    "schema " + db.schema() + " does not exist (database " + db.redactedUrl() + "): run `pglease "
                            + "migrate --schema " + db.schema() + "` first, or pass the right --schema");
        }
        Optional<ProtectionStatements.Table> found;
        try {
            found = statements.table(c, name);
        } catch (SQLException e) {
            if (!SqlErrors.insufficientPrivilege(e)) {
                throw e;
            }
            throw new CliFailure(
                    ExitCodes.FAILED,
                    "can not look up " + name + " (" + DatabaseOptions.oneLine(e.getMessage()) + "): only the "
                            + "table's owner may " + verb + " it; run it as the owner",
                    e);
        }
        ProtectionStatements.Table t = found.orElseThrow(() -> new CliFailure(
                ExitCodes.FAILED,
                "no table named " + name + " (give it as SCHEMA.TABLE; names are folded to lower case "
                        + "unless quoted, as in SQL)"));
        if (!t.kind().equals("r") && !t.kind().equals("p")) {
            throw new CliFailure(
                    ExitCodes.FAILED,
                    t.table() + " is not a table (relkind " + t.kind() + "): only "
                            + "tables and partitioned tables can be protected");
        }
        if (!t.owns()) {
            throw new CliFailure(
                    ExitCodes.FAILED,
                    "only the owner of " + t.table() + " (role " + t.owner() + ") may " + verb + " it, and " + t.user()
                            + " is not: run it as " + t.owner() + " (or a member of it)");
        }
        if (!t.mayProtect()) {
            String roles = t.protectRoles() == null ? "the roles of schema " + db.schema() : t.protectRoles();
            throw new CliFailure(
                    ExitCodes.FAILED,
                    t.user() + " owns " + t.table() + " but may not call " + db.schema() + "." + verb + ": only "
                            + "members of " + roles + " may (the observer role is enough: it only reads). Grant "
                            + "one to " + t.user() + " (GRANT <role> TO " + t.user() + ")");
        }
        return t;
    }
}
