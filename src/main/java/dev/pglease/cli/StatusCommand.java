package dev.pglease.cli;

import dev.pglease.internal.sql.OperatorStatements;
import dev.pglease.internal.sql.ProtectionStatements;
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

/** {@code pglease status}: every lease, its holder, token and remaining time on the database clock. */
@Command(
        name = "status",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Show every lease: holder, token, time remaining, last change.",
            "Shows each lease's holder, its fencing token, whether it is held and the time remaining, both "
                    + "measured on the database clock, and the last change of holder.",
            "",
            "Example: pglease status --jdbc-url 'jdbc:postgresql://db:5432/app?user=ops'"
        },
        footer = {
            "",
            "A lease whose holder stopped renewing shows HELD no and no REMAINING",
            "until a standby takes it over (HOLDER keeps the last holder).",
            "Tables protected by a lease (pglease protect) follow the leases.",
            "With --group NAME: the lease group's members and the owner of each shard.",
            "",
            ExitCodes.EXIT_CODES_1,
            ExitCodes.EXIT_CODES_2
        })
final class StatusCommand extends OperatorCommand {

    @Parameters(arity = "0..*", paramLabel = "NAME", description = "Only these leases (default: all).")
    List<String> names = new ArrayList<>();

    @Option(names = "--json", description = "Print a JSON array instead of a table (an object with --group).")
    boolean json;

    @Option(
            names = "--group",
            paramLabel = "GROUP",
            description = "Show the lease group GROUP instead: its members and the owner of each of its shards.")
    String group;

    @Override
    int execute(PrintWriter out) throws CliFailure {
        String schema = db.schema();
        if (group != null) {
            if (!names.isEmpty()) {
                throw new CliFailure(
                        ExitCodes.USAGE,
                        "--group shows one lease group; leave out the lease names " + String.join(", ", names)
                                + " (its shards are the leases " + group + "/0, " + group + "/1, ...)");
            }
            return GroupStatus.print(this, out, schema, group, json);
        }
        List<Map<String, Object>> leases = new ArrayList<>();
        List<ProtectionStatements.ProtectedTable> tables = new ArrayList<>();
        try (Connection c = connectToSchema()) {
            leases.addAll(read(c, schema, names));
            for (ProtectionStatements.ProtectedTable t : new ProtectionStatements(schema).protectedTables(c)) {
                if (names.isEmpty() || names.contains(t.lease())) {
                    tables.add(t);
                }
            }
        } catch (SQLException e) {
            throw db.failure("could not read lease status", e);
        }
        for (Map<String, Object> l : leases) {
            l.put(
                    "protected_tables",
                    tables.stream()
                            .filter(t -> t.lease().equals(l.get("lease")))
                            .map(ProtectionStatements.ProtectedTable::table)
                            .toList());
        }
        List<String> missing = new ArrayList<>(names);
        leases.forEach(l -> missing.remove((String) l.get("lease")));
        if (json) {
            out.println(JsonLines.toJson(leases));
            return missing.isEmpty()
                    ? ExitCodes.OK
                    : notDone("no lease named " + String.join(", ", missing) + " in schema " + schema);
        }
        if (!missing.isEmpty()) {
            out.flush();
            notDone("no lease named " + String.join(", ", missing) + " in schema " + schema);
        }
        if (leases.isEmpty()) {
            if (names.isEmpty()) {
                out.println("no leases in schema " + schema + " yet");
            }
            printProtected(out, tables);
            return names.isEmpty() ? ExitCodes.OK : ExitCodes.FAILED;
        }
        Table table = new Table("LEASE", "HOLDER", "TOKEN", "TERM.COUNTER", "HELD", "REMAINING", "LAST CHANGE");
        for (Map<String, Object> l : leases) {
            String change = l.get("last_event") == null
                    ? null
                    : l.get("last_event") + " " + Table.millis((Long) l.get("last_change_ago_ms")) + " ago ("
                            + Table.time(java.time.Instant.parse((String) l.get("last_change"))) + ")";
            table.row(
                    l.get("lease"),
                    l.get("holder"),
                    l.get("token"),
                    l.get("term_token"),
                    Boolean.TRUE.equals(l.get("held")) ? "yes" : "no",
                    Table.millis((Long) l.get("remaining_ms")),
                    change);
        }
        table.print(out);
        printProtected(out, tables);
        return missing.isEmpty() ? ExitCodes.OK : ExitCodes.FAILED;
    }

    /** The tables that refuse writes not fenced for their lease (pglease protect), after a blank line. */
    private static void printProtected(PrintWriter out, List<ProtectionStatements.ProtectedTable> tables) {
        if (tables.isEmpty()) {
            return;
        }
        out.println();
        Table table = new Table("PROTECTED TABLE", "LEASE", "CHECKED PER");
        tables.forEach(t -> table.row(t.table(), t.lease(), t.checkedPer()));
        table.print(out);
    }

    /** The status rows as ordered maps (the JSON shape of {@code status --json}). */
    static List<Map<String, Object>> read(Connection c, String schema, List<String> names) throws SQLException {
        List<Map<String, Object>> rows = new ArrayList<>();
        for (OperatorStatements.LeaseStatus s : new OperatorStatements(schema).status(c, names)) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("lease", s.name());
            m.put("holder", s.holder());
            m.put("token", s.token());
            m.put("term_token", Table.term(s.token()));
            m.put("holder_role", s.holderRole());
            m.put("held", s.held());
            m.put("remaining_ms", s.remainingMillis());
            m.put("expires_at", Table.iso(s.expiresAt()));
            m.put("last_event", s.lastEvent());
            m.put("last_change", Table.iso(s.lastChange()));
            m.put("last_change_ago_ms", s.lastChangeAgoMillis());
            rows.add(m);
        }
        return rows;
    }
}
