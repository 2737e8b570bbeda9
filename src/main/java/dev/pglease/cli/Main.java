package dev.pglease.cli;

import dev.pglease.LeaseException;
import dev.pglease.Secrets;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the pglease command-line tool ({@code java -jar pglease-all.jar <command>}). */
@Command(name = "pglease", mixinStandardHelpOptions = true, version = "pglease 0.1.0",
        description = "Leader election and fenced leases on PostgreSQL.",
        subcommands = {NodeCommand.class, CommandLine.HelpCommand.class})
public final class Main {

    private Main() {
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs a command and returns its exit code: 0 ok, 1 failure, 2 bad usage. */
    public static int run(String... args) {
        CommandLine cli = new CommandLine(new Main());
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            String message = e instanceof LeaseException le ? le.reason() + ": " + le.getMessage() : e.getMessage();
            commandLine.getErr().println("pglease: " + Secrets.redact(String.valueOf(message)));
            return e instanceof IllegalArgumentException ? 2 : 1;
        });
        return cli.execute(args);
    }
}
