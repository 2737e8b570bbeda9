package dev.pglease.cli;

import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.SQLException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code pglease release NAME}: takes a lease away from its holder through {@code <schema>.force_release}. */
@Command(
        name = "release",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Force-release a lease now (operator function force_release).",
            "Calls <schema>.force_release(name): the token moves on, so the holder's fenced writes are refused "
                    + "from this moment, and a standby acquires the lease with a higher token still. The holder "
                    + "notices at its next renewal and steps down.",
            "",
            "Example: pglease release payments"
        },
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
            return LeaseChange.apply(this, out, c, schema, name, json, false, null);
        } catch (SQLException e) {
            throw db.failure("could not release lease " + name, e);
        }
    }
}
