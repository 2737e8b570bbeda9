package dev.pglease.cli;

import dev.pglease.LeaseException;
import dev.pglease.Secrets;
import dev.pglease.demo.ChargerCommand;
import dev.pglease.demo.DemoCommand;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the pglease command-line tool ({@code java -jar pglease-all.jar <command>}). */
@Command(name = "pglease", mixinStandardHelpOptions = true, version = "pglease 0.1.0",
        description = "Leader election and fenced leases on PostgreSQL.",
        subcommands = {DemoCommand.class, NodeCommand.class, StatusCommand.class, WatchCommand.class,
                HistoryCommand.class, ReleaseCommand.class, HandoffCommand.class, MigrateCommand.class,
                ChargerCommand.class, CommandLine.HelpCommand.class},
        footer = {"", "Every command takes --jdbc-url URL (default: the environment variable",
                "PGLEASE_JDBC_URL) and --schema (default: pglease). Passwords are never printed.",
                "Run `pglease demo` to see a failover with fencing on an embedded PostgreSQL.",
                "Run `pglease help COMMAND` or `pglease COMMAND --help` for the details of one command."})
public final class Main {

    private Main() {
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs a command and returns its exit code: 0 ok, 1 failure, 2 bad usage (operator commands: see ExitCodes). */
    public static int run(String... args) {
        return commandLine().execute(args);
    }

    /** The configured command line (for tests and embedding): execute it, or inspect its model. */
    public static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new Main());
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            String message = e instanceof LeaseException le ? le.reason() + ": " + le.getMessage() : e.getMessage();
            commandLine.getErr().println("pglease: " + Secrets.redact(String.valueOf(message)));
            return e instanceof IllegalArgumentException ? 2 : 1;
        });
        return cli;
    }
}
