package dev.pglease.testkit;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * The test suite's one way to run a server process a test needs (an etcd member, a ZooKeeper server): start it
 * with its output appended to a log file, wait until it is ready, kill it by its own handle.
 */
public final class ServerProcess {
    private ServerProcess() {}

    /**
     * Starts {@code command} in the directory of {@code log} (the server's own: the build's directory may be closed to
     * the login a server runs as), with stdout and stderr appended to {@code log}.
     */
    public static Process start(List<String> command, Path log) {
        try {
            return new ProcessBuilder(command)
                    .directory(log.toAbsolutePath().getParent().toFile())
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
                    .start();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start " + command.get(0), e);
        }
    }

    /**
     * Polls {@code ready} every {@code pollMillis} until it answers true.
     *
     * @throws IllegalStateException naming {@code what} and where the logs are, after {@code timeout}
     */
    public static void await(String what, Duration timeout, long pollMillis, BooleanSupplier ready, Path logs) {
        long end = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < end) {
            if (ready.getAsBoolean()) {
                return;
            }
            try {
                TimeUnit.MILLISECONDS.sleep(pollMillis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        throw new IllegalStateException(what + " within " + timeout.toSeconds() + " s; logs in " + logs);
    }

    /** kill -9 by the process's handle, then waits for it to be gone. */
    public static void kill(Process p) {
        if (p != null) {
            p.destroyForcibly();
            try {
                p.waitFor();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
