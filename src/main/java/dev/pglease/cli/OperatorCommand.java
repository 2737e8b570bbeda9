package dev.pglease.cli;

import dev.pglease.internal.tool.Visible;
import dev.pglease.internal.util.Secrets;
import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.concurrent.Callable;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * Base of the operator commands: connects, checks the schema, and turns every failure into one line on stderr and
 * an exit code from {@link ExitCodes}. Everything they print goes through {@link Visible}.
 */
abstract class OperatorCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Mixin
    DatabaseOptions db;

    @Override
    public final Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        try {
            int code = execute(out);
            out.flush();
            return code;
        } catch (CliFailure f) {
            out.flush();
            err.println("pglease " + spec.name() + ": " + Visible.text(Secrets.redact(f.getMessage())));
            err.flush();
            return f.exitCode();
        }
    }

    /** Runs the command; prints to {@code out}; returns the exit code. */
    abstract int execute(PrintWriter out) throws CliFailure;

    /** Connects and checks that the schema is migrated. */
    Connection connectToSchema() throws CliFailure {
        Connection c = db.connect();
        try {
            db.requireSchema(c);
            return c;
        } catch (SQLException e) {
            closeQuietly(c);
            throw db.failure("could not check schema", e);
        } catch (CliFailure f) {
            closeQuietly(c);
            throw f;
        }
    }

    /** Prints a failure message and returns the exit code, for commands that end "not done" without an exception. */
    int notDone(String message) {
        PrintWriter err = spec.commandLine().getErr();
        err.println("pglease " + spec.name() + ": " + Visible.text(Secrets.redact(message)));
        err.flush();
        return ExitCodes.FAILED;
    }

    /** Prints one line for people, with {@link Visible#text}: names and holders come from the database. */
    static void println(PrintWriter out, String line) {
        out.println(Visible.text(line));
    }

    static void closeQuietly(Connection c) {
        try {
            c.close();
        } catch (SQLException ignored) {
            // nothing to do
        }
    }
}
