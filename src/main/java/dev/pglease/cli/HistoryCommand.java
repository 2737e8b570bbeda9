package dev.pglease.cli;

import dev.pglease.internal.sql.OperatorStatements;
import dev.pglease.internal.tool.JsonLines;
import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code pglease history NAME}: the changes of holder of one lease, from the event table. */
@Command(
        name = "history",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Show the latest changes of holder of a lease.",
            "Reads <schema>.lease_events, oldest first. A trigger writes it, so hand edits appear too. Kinds: "
                    + "acquired, taken_over (the previous holder's lease had expired), released, force_released, "
                    + "handed_off.",
            "",
            "Example: pglease history payments --limit 5"
        },
        footer = {"", ExitCodes.EXIT_CODES_1, ExitCodes.EXIT_CODES_2})
final class HistoryCommand extends OperatorCommand {

    @Parameters(index = "0", paramLabel = "NAME", description = "The lease.")
    String name;

    @Option(
            names = "--limit",
            defaultValue = "20",
            paramLabel = "N",
            description = "How many of the latest events to show (default: ${DEFAULT-VALUE}).")
    int limit;

    @Option(names = "--json", description = "Print a JSON array instead of a table.")
    boolean json;

    @Override
    int execute(PrintWriter out) throws CliFailure {
        if (limit < 1) {
            throw new CliFailure(ExitCodes.USAGE, "--limit must be at least 1, got " + limit);
        }
        String schema = db.schema();
        List<Map<String, Object>> events = new ArrayList<>();
        try (Connection c = connectToSchema()) {
            for (OperatorStatements.LeaseEvent event : new OperatorStatements(schema).history(c, name, limit)) {
                Map<String, Object> e = new LinkedHashMap<>();
                e.put("id", event.id());
                e.put("at", Table.iso(event.at()));
                e.put("kind", event.kind());
                e.put("token", event.token());
                e.put("term_token", Table.term(event.token()));
                e.put("holder", event.holder());
                e.put("previous_holder", event.previousHolder());
                e.put("changed_by", event.changedBy());
                events.add(e);
            }
        } catch (SQLException e) {
            throw db.failure("could not read the history of lease " + name, e);
        }
        if (events.isEmpty()) {
            if (json) {
                out.println("[]");
            }
            return notDone("lease " + name + " has no history in schema " + schema + " (no such lease)");
        }
        if (json) {
            out.println(JsonLines.toJson(events));
            return ExitCodes.OK;
        }
        Table table = new Table("AT (UTC)", "EVENT", "TOKEN", "TERM.COUNTER", "HOLDER", "PREVIOUS HOLDER", "BY");
        for (Map<String, Object> e : events) {
            table.row(
                    Table.time(java.time.Instant.parse((String) e.get("at"))),
                    e.get("kind"),
                    e.get("token"),
                    e.get("term_token"),
                    e.get("holder"),
                    e.get("previous_holder"),
                    e.get("changed_by"));
        }
        table.print(out);
        return ExitCodes.OK;
    }
}
