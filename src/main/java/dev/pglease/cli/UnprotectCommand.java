package dev.pglease.cli;

import dev.pglease.internal.sql.ProtectionStatements;
import dev.pglease.internal.tool.JsonLines;
import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code pglease unprotect --table T}: removes the protection {@code pglease protect} put on a table. */
@Command(
        name = "unprotect",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Remove the protection of a table.",
            "Calls <schema>.unprotect(table): writes to the table no longer need a fenced transaction. Run it as "
                    + "the table's owner.",
            "",
            "Example: pglease unprotect --table billing.charges"
        },
        footer = {"", ExitCodes.EXIT_CODES_1, ExitCodes.EXIT_CODES_2})
final class UnprotectCommand extends OperatorCommand {

    @Option(
            names = "--table",
            required = true,
            paramLabel = "SCHEMA.TABLE",
            description = "The table (schema-qualified, or found on the search path).")
    String table;

    @Option(names = "--json", description = "Print the outcome as a JSON object.")
    boolean json;

    @Override
    int execute(PrintWriter out) throws CliFailure {
        String schema = db.schema();
        ProtectionStatements statements = new ProtectionStatements(schema);
        try (Connection c = db.connect()) {
            ProtectionStatements.Table t = TableChecks.ownedTable(db, c, statements, table, "unprotect");
            Optional<String> current = Optional.ofNullable(t.lease());
            if (current.isEmpty()) {
                if (json) {
                    out.println(JsonLines.toJson(outcome(t, null, false)));
                }
                return notDone(t.table() + " is not protected by a lease of schema " + schema + ": nothing to do");
            }
            statements.unprotect(c, t.table());
            if (json) {
                out.println(JsonLines.toJson(outcome(t, current.get(), true)));
            } else {
                println(
                        out,
                        "unprotected table " + t.table() + " (it was protected by lease " + current.get()
                                + "): writes no longer need a fenced transaction");
            }
            return ExitCodes.OK;
        } catch (SQLException e) {
            throw db.failure("could not unprotect " + table, e);
        }
    }

    private static Map<String, Object> outcome(ProtectionStatements.Table t, String lease, boolean changed) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("table", t.table());
        m.put("lease", lease);
        m.put("action", "unprotect");
        m.put("changed", changed);
        return m;
    }
}
