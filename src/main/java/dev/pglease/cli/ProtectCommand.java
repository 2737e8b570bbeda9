package dev.pglease.cli;

import dev.pglease.internal.sql.ProtectionStatements;
import dev.pglease.internal.tool.JsonLines;
import dev.pglease.internal.util.Names;
import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code pglease protect --table T --lease L}: the table refuses every write not fenced for the lease. */
@Command(
        name = "protect",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Protect a table with a lease: the database refuses every unfenced or stale write.",
            "Calls <schema>.protect(table, lease): from now on every INSERT, UPDATE and DELETE on the table "
                    + "commits only in a transaction fenced for the lease with its current token, by the login "
                    + "that holds it (<schema>.fence(lease, token), which every pglease fencing call makes); "
                    + "TRUNCATE is refused. A refused write fails with SQLSTATE PL002. Run it as the table's "
                    + "owner, a member of one of the schema's roles (the observer role is enough). Protecting again with the same lease "
                    + "changes nothing; `pglease status` lists the protected tables.",
            "",
            "Example: pglease protect --table billing.charges --lease payments"
        },
        footer = {"", ExitCodes.EXIT_CODES_1, ExitCodes.EXIT_CODES_2})
final class ProtectCommand extends OperatorCommand {

    @Option(
            names = "--table",
            required = true,
            paramLabel = "SCHEMA.TABLE",
            description = "The table (schema-qualified, or found on the search path).")
    String table;

    @Option(names = "--lease", required = true, paramLabel = "NAME", description = "The lease that guards it.")
    String lease;

    @Option(names = "--json", description = "Print the outcome as a JSON object.")
    boolean json;

    @Override
    int execute(PrintWriter out) throws CliFailure {
        try {
            Names.leaseName(lease);
        } catch (IllegalArgumentException e) {
            throw new CliFailure(ExitCodes.USAGE, "--lease: " + e.getMessage());
        }
        String schema = db.schema();
        ProtectionStatements statements = new ProtectionStatements(schema);
        try (Connection c = db.connect()) {
            ProtectionStatements.Table t = TableChecks.ownedTable(db, c, statements, table, "protect");
            Optional<String> current = Optional.ofNullable(t.lease());
            if (current.isPresent() && !current.get().equals(lease)) {
                return notDone(t.table() + " is protected by lease " + current.get() + " already; run `pglease "
                        + "unprotect --table " + t.table() + "` first to protect it with " + lease);
            }
            if (current.isEmpty()) {
                statements.protect(c, t.table(), lease);
            }
            if (json) {
                Map<String, Object> m = new LinkedHashMap<>();
                m.put("table", t.table());
                m.put("lease", lease);
                m.put("action", "protect");
                m.put("changed", current.isEmpty());
                out.println(JsonLines.toJson(m));
            } else if (current.isEmpty()) {
                println(
                        out,
                        "protected table " + t.table() + " with lease " + lease + ": every INSERT, UPDATE and "
                                + "DELETE now needs a transaction fenced for " + lease + " with its current token, "
                                + "and TRUNCATE is refused");
            } else {
                println(out, "table " + t.table() + " is protected with lease " + lease + " already: nothing changed");
            }
            return ExitCodes.OK;
        } catch (SQLException e) {
            throw db.failure("could not protect " + table, e);
        }
    }
}
