package dev.pglease.testkit;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The test suite's one way to start a JVM from the test classpath (a {@code pglease node}, the demo, a test-only
 * candidate) and to stop one it started: by its own process handle, never by name.
 */
public final class JavaProcess {
    private JavaProcess() {}

    /** JVM options for short-lived helper JVMs: small heap, quick start. */
    public static final List<String> SMALL = List.of("-Xmx128m", "-XX:TieredStopAtLevel=1", "-Xshare:auto");

    /** The classpath of the running tests, to start other JVMs with. */
    public static String classpath() {
        String cp = System.getProperty("surefire.test.class.path");
        return cp != null && !cp.isBlank() ? cp : System.getProperty("java.class.path");
    }

    /** The {@code java} binary of the running JVM. */
    public static String javaBinary() {
        return Path.of(System.getProperty("java.home"), "bin", "java").toString();
    }

    /**
     * The option every JVM the tests start gets, as the test JVM does: performance counters in memory, not in a file
     * the JVM writes while its threads wait at a safepoint (a write that waits for a busy disk pauses the whole JVM).
     */
    public static final String NO_PERF_FILE = "-XX:+PerfDisableSharedMem";

    /** {@code java <NO_PERF_FILE> <jvmOptions> -cp <test classpath> <mainClass> <args>}. */
    public static List<String> command(List<String> jvmOptions, String mainClass, List<String> args) {
        List<String> cmd = new ArrayList<>();
        cmd.add(javaBinary());
        cmd.add(NO_PERF_FILE);
        cmd.addAll(jvmOptions);
        cmd.addAll(List.of("-cp", classpath(), mainClass));
        cmd.addAll(args);
        return cmd;
    }

    /** The {@code pglease} command line ({@code dev.pglease.cli.Main}) with {@code args}. */
    public static List<String> pglease(List<String> jvmOptions, String... args) {
        return command(jvmOptions, "dev.pglease.cli.Main", List.of(args));
    }

    /**
     * SIGTERM through the process handle (so our end of its stdout stays readable), then waits; returns whether it
     * exited in time. A process that did not is left running for {@link #kill}.
     */
    public static boolean terminate(Process p, long timeoutMillis) throws InterruptedException {
        p.toHandle().destroy();
        return p.waitFor(timeoutMillis, TimeUnit.MILLISECONDS);
    }

    /** kill -9 (by its handle) and wait up to 5 s. */
    public static void kill(Process p) {
        if (p.isAlive()) {
            p.destroyForcibly();
            try {
                p.waitFor(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
