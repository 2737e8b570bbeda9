package dev.pglease.cli;

import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.SQLException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code pglease handoff NAME [--to PREFIX]}: moves a lease to another candidate through {@code <schema>.handoff};
 * {@code pglease handoff --group GROUP --shard K [--to PREFIX]}: moves one shard of a lease group to another member
 * through {@code <schema>.group_handoff}.
 */
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
            "With --group GROUP --shard K: moves shard K of the lease group to another live member (one whose id "
                    + "starts with PREFIX) through <schema>.group_handoff(group, shard, to_prefix): the shard's holder "
                    + "loses it now, the group's members are told and the member the assignment picks takes it at once; "
                    + "if that member then has more than its share, it gives one of its other shards back. Refused "
                    + "when no live member other than the holder may take it.",
            "",
            "Example: pglease handoff payments --to node2/",
            "         pglease handoff --group invoices --shard 17 --to node2/"
        },
        footer = {"", ExitCodes.EXIT_CODES_1, ExitCodes.EXIT_CODES_2})
final class HandoffCommand extends OperatorCommand {

    @Parameters(index = "0", arity = "0..1", paramLabel = "NAME", description = "The lease (not with --group).")
    String name;

    @Option(names = "--group", paramLabel = "GROUP", description = "The lease group of the shard to move.")
    String group;

    @Option(names = "--shard", paramLabel = "K", description = "With --group: the shard to move (0-based).")
    Integer shard;

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
        if ((group == null) != (shard == null)) {
            throw new CliFailure(
                    ExitCodes.USAGE,
                    "--group and --shard go together: pglease handoff --group GROUP --shard K [--to PREFIX]");
        }
        if ((group == null) == (name == null)) {
            throw new CliFailure(
                    ExitCodes.USAGE,
                    group == null
                            ? "name the lease to hand off (pglease handoff NAME), or a shard with --group and --shard"
                            : "give the lease name or --group with --shard, not both (got " + name + " and --group "
                                    + group + ")");
        }
        String schema = db.schema();
        try (Connection c = connectToSchema()) {
            if (group != null) {
                return LeaseChange.handOffShard(this, out, c, schema, group, shard, json, to);
            }
            return LeaseChange.apply(this, out, c, schema, name, json, true, to);
        } catch (SQLException e) {
            if (group != null && "22023".equals(e.getSQLState())) {
                return notDone(DatabaseOptions.oneLine(e.getMessage()).replaceFirst("^ERROR: pglease: ", ""));
            }
            throw db.failure(
                    group == null
                            ? "could not hand off lease " + name
                            : "could not hand off shard " + shard + " of group " + group,
                    e);
        }
    }
}
