package dev.pglease.cli;

import dev.pglease.internal.sql.GroupStatements;
import dev.pglease.internal.tool.GroupJson;
import dev.pglease.internal.tool.JsonLines;
import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code pglease status --group NAME}: a lease group as the database shows it now (the views
 * {@code group_member_status} and {@code group_shard_status}, on the database clock): its members and the owner of
 * every shard. The JSON object is the one {@code GET /actuator/leases/NAME} prints.
 */
final class GroupStatus {

    private GroupStatus() {}

    static int print(OperatorCommand command, PrintWriter out, String schema, String group, boolean json)
            throws CliFailure {
        Map<String, Object> status;
        try (Connection c = command.connectToSchema()) {
            status = read(c, schema, group);
        } catch (SQLException e) {
            throw command.db.failure("could not read group " + group, e);
        }
        if (status == null) {
            return command.notDone("no lease group named " + group + " in schema " + schema);
        }
        if (json) {
            out.println(JsonLines.toJson(status));
            return ExitCodes.OK;
        }
        printTables(out, status);
        return ExitCodes.OK;
    }

    /** The group's status as an ordered map (the JSON shape), or {@code null} when there is no such group. */
    static Map<String, Object> read(Connection c, String schema, String group) throws SQLException {
        GroupStatements sql = new GroupStatements(schema);
        List<GroupStatements.GroupSummary> found = sql.groups(c, group);
        if (found.isEmpty()) {
            return null;
        }
        Map<String, Object> status = new LinkedHashMap<>(GroupJson.summary(found.get(0)));
        status.put("members", GroupJson.members(sql.members(c, group)));
        status.put("shard_owners", GroupJson.shards(sql.shardStatus(c, group)));
        return status;
    }

    @SuppressWarnings("unchecked")
    static void printTables(PrintWriter out, Map<String, Object> status) {
        OperatorCommand.println(
                out,
                "group " + status.get("group") + ": " + status.get("shards") + " shards, " + status.get("held_shards")
                        + " held, " + status.get("live_members") + " live members");
        out.println();
        Table members = new Table("MEMBER", "WEIGHT", "PRIORITY", "LIVE", "SHARDS", "REMAINING", "JOINED");
        for (Map<String, Object> m : (List<Map<String, Object>>) status.get("members")) {
            members.row(
                    m.get("member"),
                    m.get("weight"),
                    m.get("priority"),
                    Boolean.TRUE.equals(m.get("live")) ? "yes" : "no",
                    m.get("shards_owned"),
                    Table.millis((Long) m.get("remaining_ms")),
                    Table.time(java.time.Instant.parse((String) m.get("joined_at"))));
        }
        if (members.isEmpty()) {
            out.println("(no members)");
        } else {
            members.print(out);
        }
        out.println();
        Table shards = new Table("SHARD", "OWNER", "TOKEN", "TERM.COUNTER", "HELD", "REMAINING");
        for (Map<String, Object> s : (List<Map<String, Object>>) status.get("shard_owners")) {
            Long token = (Long) s.get("token");
            shards.row(
                    s.get("shard"),
                    s.get("owner"),
                    token,
                    token == null ? null : Table.term(token),
                    Boolean.TRUE.equals(s.get("held"))
                            ? (Boolean.TRUE.equals(s.get("owner_is_member")) ? "yes" : "yes (not a member)")
                            : "no",
                    Table.millis((Long) s.get("remaining_ms")));
        }
        shards.print(out);
    }
}
