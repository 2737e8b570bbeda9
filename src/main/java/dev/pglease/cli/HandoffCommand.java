package dev.pglease.cli;

import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.SQLException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code pglease handoff NAME [--to PREFIX]}: moves a lease to another candidate through {@code <schema>.handoff}. */
@Command(
        name = "handoff",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Hand a lease over to another candidate (operator function handoff).",
            "Calls <schema>.handoff(name, to_prefix): the holder loses the lease now (its token is fenced off) "
                    + "and may not take it back for one lease duration; with --to, only a candidate whose holder "
                    + "id starts with PREFIX may take it in that time.",
            "",
            "Example: pglease handoff payments --to node2/"
        },
        footer = {"", ExitCodes.EXIT_CODES_1, ExitCodes.EXIT_CODES_2})
final class HandoffCommand extends OperatorCommand {

    @Parameters(index = "0", paramLabel = "NAME", description = "The lease.")
    String name;

    @Option(
            names = "--to",
            paramLabel = "PREFIX",
            description = "Holder id prefix of the candidate that should take over (default: any other).")
    String to;

    @Option(names = "--json", description = "Print the outcome as a JSON object.")
    boolean json;

    @Override
    int execute(PrintWriter out) throws CliFailure {
        if (to != null && to.isEmpty()) {
            throw new CliFailure(ExitCodes.USAGE, "--to must not be empty (leave it out to allow any other candidate)");
        }
        String schema = db.schema();
        try (Connection c = connectToSchema()) {
            return LeaseChange.apply(this, out, c, schema, name, json, true, to);
        } catch (SQLException e) {
            throw db.failure("could not hand off lease " + name, e);
        }
    }
}
