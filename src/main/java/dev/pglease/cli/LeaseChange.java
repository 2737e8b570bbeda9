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
