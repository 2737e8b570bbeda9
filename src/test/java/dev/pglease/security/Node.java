package dev.pglease.security;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A {@code pglease node} JVM whose whole output (stdout and stderr) is kept, to check what it prints. Stopped by PID
 * (SIGTERM through its handle, then SIGKILL), also when a test fails.
 */
final class Node implements AutoCloseable {

    private static final ObjectMapper MAPPER = new ObjectMapper();
    private final Process process;
    private final File stderr;
    private final List<String> stdout = java.util.Collections.synchronizedList(new ArrayList<>());
    private final Thread reader;

    private Node(Process process, File stderr) {
        this.process = process;
        this.stderr = stderr;
        this.reader = new Thread(
                () -> {
                    try (BufferedReader r = new BufferedReader(
                            new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                        String line;
                        while ((line = r.readLine()) != null) {
                            stdout.add(line);
                        }
                    } catch (IOException ended) {
                        // the process ended
                    }
                },
                "node-output-" + process.pid());
        reader.setDaemon(true);
        reader.start();
    }

    static Node start(Map<String, String> env, String... args) throws IOException {
        List<String> all = new ArrayList<>(List.of("node"));
        all.addAll(List.of(args));
        List<String> command = dev.pglease.testkit.JavaProcess.command(
                dev.pglease.testkit.JavaProcess.SMALL, "dev.pglease.cli.Main", all);
        File err = File.createTempFile("pglease-node-", ".stderr");
        err.deleteOnExit();
        ProcessBuilder pb = new ProcessBuilder(command).redirectError(err);
        pb.environment().remove("PGLEASE_JDBC_URL");
        pb.environment().putAll(env);
        return new Node(pb.start(), err);
    }

    /** Waits for a stdout line with {@code "event":"<name>"}, or for the process to end. */
    Map<String, Object> await(String event, long timeoutMillis) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (System.nanoTime() < end) {
            for (Map<String, Object> e : events()) {
                if (event.equals(e.get("event"))) {
                    return e;
                }
            }
            if (!process.isAlive()) {
                reader.join(2_000);
                for (Map<String, Object> e : events()) {
                    if (event.equals(e.get("event"))) {
                        return e;
                    }
                }
                throw new AssertionError(
                        "node exited (" + process.exitValue() + ") without a " + event + " event: " + output());
            }
            Thread.sleep(20);
        }
        throw new AssertionError("no " + event + " event within " + timeoutMillis + " ms: " + output());
    }

    @SuppressWarnings("unchecked")
    List<Map<String, Object>> events() {
        List<Map<String, Object>> out = new ArrayList<>();
        synchronized (stdout) {
            for (String line : stdout) {
                if (line.startsWith("{")) {
                    try {
                        out.add(MAPPER.readValue(line, Map.class));
                    } catch (IOException notJson) {
                        throw new AssertionError("not a JSON line: " + line, notJson);
                    }
                }
            }
        }
        return out;
    }

    /** Waits for the exit code (the process ends by itself). */
    int waitFor(long timeoutMillis) throws InterruptedException {
        if (!process.waitFor(timeoutMillis, TimeUnit.MILLISECONDS)) {
            throw new AssertionError(
                    "node " + process.pid() + " still runs after " + timeoutMillis + " ms: " + output());
        }
        reader.join(2_000);
        return process.exitValue();
    }

    /** SIGTERM (by PID, through the handle so stdout stays readable), then the exit code. */
    int terminate(long timeoutMillis) throws InterruptedException {
        dev.pglease.testkit.JavaProcess.terminate(process, 0);
        return waitFor(timeoutMillis);
    }

    /** Everything the process wrote, stdout then stderr. */
    String output() {
        String err;
        try {
            err = Files.readString(stderr.toPath(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            err = "(stderr unreadable: " + e + ")";
        }
        synchronized (stdout) {
            return String.join("\n", stdout) + "\n--- stderr ---\n" + err;
        }
    }

    String stderr() throws IOException {
        return Files.readString(stderr.toPath(), StandardCharsets.UTF_8);
    }

    @Override
    public void close() throws InterruptedException {
        dev.pglease.testkit.JavaProcess.kill(process);
        stderr.delete();
    }
}
