package dev.pglease.cli;

import dev.pglease.LeaseException;
import dev.pglease.demo.ChargerCommand;
import dev.pglease.demo.DemoCommand;
import dev.pglease.internal.tool.Visible;
import dev.pglease.internal.util.Secrets;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;
import java.util.jar.Attributes;
import java.util.jar.JarFile;
import java.util.jar.Manifest;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** Entry point of the pglease command-line tool ({@code java -jar pglease-all.jar <command>}). */
@Command(
        name = "pglease",
        mixinStandardHelpOptions = true,
        versionProvider = Main.ManifestVersion.class,
        description = "Leader election and fenced leases on PostgreSQL.",
        subcommands = {
            DemoCommand.class,
            NodeCommand.class,
            StatusCommand.class,
            WatchCommand.class,
            HistoryCommand.class,
            ReleaseCommand.class,
            HandoffCommand.class,
            ProtectCommand.class,
            UnprotectCommand.class,
            MigrateCommand.class,
            ChargerCommand.class,
            CommandLine.HelpCommand.class
        },
        footer = {
            "",
            "Every command takes --jdbc-url URL (default: the environment variable",
            "PGLEASE_JDBC_URL) and --schema (default: pglease). Passwords are never printed.",
            "Run `pglease demo` to see a failover with fencing on an embedded PostgreSQL.",
            "Run `pglease help COMMAND` or `pglease COMMAND --help` for the details of one command."
        })
public final class Main {

    private Main() {}

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
            commandLine.getErr().println("pglease: " + Visible.text(Secrets.redact(String.valueOf(message))));
            return e instanceof IllegalArgumentException ? 2 : 1;
        });
        cli.setParameterExceptionHandler(Main::badUsage);
        return cli;
    }

    /**
     * Bad usage, as picocli reports it (the message, then suggestions or the usage help), with what the user typed
     * shown by {@link Visible#text}: an option or value may carry characters a terminal would act on.
     */
    private static int badUsage(CommandLine.ParameterException e, String[] args) {
        CommandLine cl = e.getCommandLine();
        PrintWriter err = cl.getErr();
        err.println(cl.getColorScheme().errorText(Visible.text(e.getMessage())));
        if (!CommandLine.UnmatchedArgumentException.printSuggestions(e, err)) {
            cl.usage(err, cl.getColorScheme());
        }
        err.flush();
        return cl.getCommandSpec().exitCodeOnInvalidInput();
    }

    /** {@code pglease --version}: the Implementation-Version of the jar this class was loaded from. */
    static final class ManifestVersion implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[] {"pglease " + version(codeSource())};
        }

        private static Path codeSource() {
            CodeSource source = Main.class.getProtectionDomain().getCodeSource();
            try {
                return source == null ? null : Path.of(source.getLocation().toURI());
            } catch (URISyntaxException | IllegalArgumentException e) {
                return null;
            }
        }

        /**
         * The Implementation-Version in the manifest of {@code jar}; "unknown (not run from a jar)" when the classes
         * were loaded from a directory (an IDE, the build's own tests) or the manifest has none.
         */
        static String version(Path jar) {
            if (jar == null || !Files.isRegularFile(jar)) {
                return "unknown (not run from a jar)";
            }
            try (JarFile file = new JarFile(jar.toFile())) {
                Manifest manifest = file.getManifest();
                String version = manifest == null
                        ? null
                        : manifest.getMainAttributes().getValue(Attributes.Name.IMPLEMENTATION_VERSION);
                return version == null ? "unknown (no Implementation-Version in " + jar.getFileName() + ")" : version;
            } catch (IOException e) {
                return "unknown (" + jar.getFileName() + " unreadable: " + e.getMessage() + ")";
            }
        }
    }
}
