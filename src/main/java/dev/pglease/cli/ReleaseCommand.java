package dev.pglease.cli;

import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.LinkedHashMap;
import java.util.Map;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code pglease release NAME}: takes a lease away from its holder through {@code <schema>.force_release}. */
@Command(name = "release", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Force-release a lease now (operator function force_release).",
                "Calls <schema>.force_release(name): the token moves on, so the holder's fenced writes are refused "
                        + "from this moment, and a standby acquires the lease with a higher token still. The holder "
                        + "notices at its next renewal and steps down.", "",
                "Example: pglease release payments"},
        footer = {"", ExitCodes.EXIT_CODES_1, ExitCodes.EXIT_CODES_2})
final class ReleaseCommand extends OperatorCommand {

    @Parameters(index = "0", paramLabel = "NAME", description = "The lease.")
    String name;

    @Option(names = "--json", description = "Print the outcome as a JSON object.")
    boolean json;

    @Override
    int execute(PrintWriter out) throws CliFailure {
        String schema = db.schema();
        try (Connection c = connectToSchema()) {
            return LeaseChange.apply(this, out, c, schema, name, json, "force_release", "force_release", null);
        } catch (SQLException e) {
            throw db.failure("could not release lease " + name, e);
        }
    }
}

/** The shared part of release and handoff: lock the row, call the operator function, report. */
final class LeaseChange {

    private LeaseChange() {
    }

    /**
     * One statement: reads the holder and token as they were, and calls the operator function. It needs only what
     * the operator role has (SELECT on the leases, EXECUTE on the function): no row lock, which would need UPDATE.
     */
    static int apply(OperatorCommand command, PrintWriter out, Connection c, String schema, String name, boolean json,
            String what, String function, String toPrefix) throws SQLException {
        boolean handoff = what.equals("handoff");
        String holder;
        long token;
        Long newToken;
        try (PreparedStatement ps = c.prepareStatement("WITH before AS (SELECT holder, token FROM " + schema
                + ".leases WHERE name = ?) SELECT holder, token, " + schema + "." + function
                + (handoff ? "(?, ?)" : "(?)") + " FROM before")) {
            ps.setString(1, name);
            ps.setString(2, name);
            if (handoff) {
                ps.setString(3, toPrefix);
            }
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return command.notDone("no lease named " + name + " in schema " + schema);
                }
                holder = rs.getString(1);
                token = rs.getLong(2);
                long t = rs.getLong(3);
                newToken = rs.wasNull() ? null : t;
            }
        }
        if (newToken == null) {
            return command.notDone("lease " + name + " is not held" + (holder == null ? "" : " (its last holder "
                    + holder + " let it expire)") + ": nothing to " + (handoff ? "hand off" : "release")
                    + "; token stays " + token);
        }
        if (json) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("lease", name);
            m.put("action", what);
            m.put("previous_holder", holder);
            m.put("previous_token", token);
            m.put("token", newToken);
            if (handoff) {
                m.put("to_prefix", toPrefix);
            }
            out.println(JsonLines.toJson(m));
        } else if (handoff) {
            out.println("handed off lease " + name + ": " + holder + " lost it (token " + token + " is fenced off), "
                    + "token is now " + newToken + "; "
                    + (toPrefix == null ? "any other candidate may take it"
                    : "only a holder starting with '" + toPrefix + "' may take it")
                    + " for one lease duration");
        } else {
            out.println("released lease " + name + ": " + holder + " lost it (token " + token
                    + " is fenced off), token is now " + newToken + "; a standby will acquire it");
        }
        return ExitCodes.OK;
    }
}
