package dev.pglease.fault.kit;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * Moved clocks through libfaketime: a skewed wall clock for a node JVM, and a database server's clock that the kit
 * steps while the server runs. CLOCK_REALTIME only; monotonic clocks stay real. {@code FAKETIME_FORCE_MONOTONIC_FIX=0}
 * keeps libfaketime from moving the timeouts of condition variables on the monotonic clock: with it, every timed wait
 * of a JVM returns at once and the JVM spins (measured by {@code FakeTimeTest}).
 */
public final class FakeTime {
    private static final Path[] CANDIDATES = {
        Path.of("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
        Path.of("/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"),
        Path.of("/usr/lib/faketime/libfaketime.so.1"),
    };

    private FakeTime() {}

    public static Path library() {
        for (Path p : CANDIDATES) {
            if (Files.isReadable(p)) {
                return p;
            }
        }
        return null;
    }

    public static boolean available() {
        return library() != null;
    }

    /**
     * Environment for a server whose wall clock is offset by what {@code offsetFile} says, read again on every clock
     * call, so {@link #writeOffset} steps it while it runs (the file must exist and be readable by the server).
     */
    public static Map<String, String> serverEnv(Path offsetFile) {
        Path lib = library();
        if (lib == null) {
            throw new IllegalStateException("libfaketime not installed (apt-get install faketime)");
        }
        Path mt = lib.resolveSibling("libfaketimeMT.so.1");
        return Map.of(
                "LD_PRELOAD",
                (Files.isReadable(mt) ? mt : lib).toString(),
                "FAKETIME_TIMESTAMP_FILE",
                offsetFile.toString(),
                "FAKETIME_NO_CACHE",
                "1",
                "FAKETIME_DONT_FAKE_MONOTONIC",
                "1",
                "DONT_FAKE_MONOTONIC",
                "1",
                "FAKETIME_FORCE_MONOTONIC_FIX",
                "0");
    }

    /** Sets the offset of every server started with {@link #serverEnv} on this file. */
    public static void writeOffset(Path offsetFile, long offsetMs) {
        try {
            Path tmp = offsetFile.resolveSibling(offsetFile.getFileName() + ".tmp");
            Files.writeString(tmp, String.format(java.util.Locale.ROOT, "%+.3fs%n", offsetMs / 1000.0));
            Files.move(
                    tmp,
                    offsetFile,
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                    java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (java.io.IOException e) {
            throw new IllegalStateException("cannot write the clock offset " + offsetFile, e);
        }
    }

    /**
     * A command that runs {@code main} of this test class path in a JVM whose wall clock is {@code skewMs} ahead
     * (negative: behind), with {@code args}.
     */
    public static String[] javaCommand(long skewMs, Class<?> main, String... args) {
        java.util.List<String> cmd = new java.util.ArrayList<>(java.util.List.of("env"));
        env(skewMs).forEach((k, v) -> cmd.add(k + "=" + v));
        cmd.addAll(
                dev.pglease.testkit.JavaProcess.command(java.util.List.of(), main.getName(), java.util.List.of(args)));
        return cmd.toArray(String[]::new);
    }

    /** Environment that runs a process with its wall clock {@code skewMs} ahead (negative: behind). */
    public static Map<String, String> env(long skewMs) {
        Path lib = library();
        if (lib == null) {
            throw new IllegalStateException("libfaketime not installed (apt-get install faketime)");
        }
        String offset = String.format(java.util.Locale.ROOT, "%+.3f", skewMs / 1000.0);
        return Map.of(
                "LD_PRELOAD",
                lib.toString(),
                "FAKETIME",
                offset,
                "FAKETIME_DONT_FAKE_MONOTONIC",
                "1",
                "DONT_FAKE_MONOTONIC",
                "1",
                "FAKETIME_FORCE_MONOTONIC_FIX",
                "0");
    }
}
