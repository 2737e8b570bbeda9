package dev.pglease.cli;

import dev.pglease.internal.sql.OperatorStatements;
import dev.pglease.internal.tool.JsonLines;
import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/** The shared part of release and handoff: call the operator function, report. */
final class LeaseChange {

    private LeaseChange() {}

    /** Calls {@code <schema>.group_handoff(group, shard, toPrefix)} and reports. */
    static int handOffShard(
            OperatorCommand command,
            PrintWriter out,
            Connection c,
            String schema,
            String group,
            int shard,
            boolean json,
            String toPrefix)
            throws SQLException {
        String name = group + "/" + shard;
        Optional<OperatorStatements.Change> found =
                new OperatorStatements(schema).groupHandoff(c, group, shard, toPrefix);
        if (found.isEmpty() || !found.get().done()) {
            return command.notDone("shard " + shard + " of group " + group + " is not held by anyone"
                    + (found.isPresent() ? "; token stays " + found.get().previousToken() : "")
                    + ": nothing to hand off (a member takes it when the assignment gives it one)");
        }
        OperatorStatements.Change change = found.get();
        if (json) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("lease", name);
            m.put("action", "handoff");
            m.put("previous_holder", change.previousHolder());
            m.put("previous_token", change.previousToken());
            m.put("token", change.token());
            m.put("to_prefix", toPrefix);
            m.put("group", group);
            m.put("shard", shard);
            out.println(JsonLines.toJson(m));
        } else {
            OperatorCommand.println(
                    out,
                    "handed off shard " + shard + " of group " + group + " (lease " + name + "): "
                            + change.previousHolder() + " lost it (token " + change.previousToken()
                            + " is fenced off), token is now " + change.token() + "; "
                            + (toPrefix == null
                                    ? "another member takes it now"
                                    : "a member starting with '" + toPrefix + "' takes it now")
                            + ", and gives one of its other shards back if it then has more than its share");
        }
        return ExitCodes.OK;
    }

    /** Calls {@code <schema>.force_release} or, with {@code handoff}, {@code <schema>.handoff}, and reports. */
    static int apply(
            OperatorCommand command,
            PrintWriter out,
            Connection c,
            String schema,
            String name,
            boolean json,
            boolean handoff,
            String toPrefix)
            throws SQLException {
        OperatorStatements operator = new OperatorStatements(schema);
        Optional<OperatorStatements.Change> found =
                handoff ? operator.handoff(c, name, toPrefix) : operator.forceRelease(c, name);
        if (found.isEmpty()) {
            return command.notDone("no lease named " + name + " in schema " + schema);
        }
        OperatorStatements.Change change = found.get();
        String holder = change.previousHolder();
        long token = change.previousToken();
        if (!change.done()) {
            return command.notDone("lease " + name + " is not held"
                    + (holder == null ? "" : " (its last holder " + holder + " let it expire)") + ": nothing to "
                    + (handoff ? "hand off" : "release")
                    + "; token stays " + token);
        }
        if (json) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("lease", name);
            m.put("action", handoff ? "handoff" : "force_release");
            m.put("previous_holder", holder);
            m.put("previous_token", token);
            m.put("token", change.token());
            if (handoff) {
                m.put("to_prefix", toPrefix);
            }
            out.println(JsonLines.toJson(m));
        } else if (handoff) {
            OperatorCommand.println(
                    out,
                    "handed off lease " + name + ": " + holder + " lost it (token " + token + " is fenced off), "
                            + "token is now " + change.token() + "; "
                            + (toPrefix == null
                                    ? "any other candidate may take it"
                                    : "only a holder starting with '" + toPrefix + "' may take it")
                            + " for one lease duration");
        } else {
            OperatorCommand.println(
                    out,
                    "released lease " + name + ": " + holder + " lost it (token " + token
                            + " is fenced off), token is now " + change.token() + "; a standby will acquire it");
        }
        return ExitCodes.OK;
    }
}
