package dev.pglease.demo;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;

/** A charger node JVM started by the demo: its JSON events, its stdin commands, and signals sent by PID. */
final class ChargerProcess {

    private static final ObjectMapper MAPPER = new ObjectMapper();

    private final String name;
    private final Process process;
    private final Writer stdin;

    private ChargerProcess(String name, Process process, BiConsumer<ChargerProcess, Map<String, Object>> onEvent) {
        this.name = name;
        this.process = process;
        this.stdin = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
        Thread reader = new Thread(() -> read(onEvent), "demo-" + name);
        reader.setDaemon(true);
        reader.start();
    }

    static ChargerProcess start(
            String name,
            String classpath,
            List<String> args,
            Map<String, String> environment,
            Path log,
            BiConsumer<ChargerProcess, Map<String, Object>> onEvent)
            throws IOException {
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx128m",
                "-XX:TieredStopAtLevel=1",
                "-XX:+UseSerialGC",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-cp",
                classpath,
                "dev.pglease.cli.Main",
                "demo-charger"));
        command.addAll(args);
        ProcessBuilder pb = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.to(log.toFile()));
        pb.environment().putAll(environment);
        return new ChargerProcess(name, pb.start(), onEvent);
    }

    @SuppressWarnings("unchecked")
    private void read(BiConsumer<ChargerProcess, Map<String, Object>> onEvent) {
        try (BufferedReader r =
                new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                if (line.startsWith("{")) {
                    try {
                        onEvent.accept(this, MAPPER.readValue(line, Map.class));
                    } catch (IOException notJson) {
                        // a stray line: ignore it
                    }
                }
            }
        } catch (IOException ignored) {
            // the process ended
        }
    }

    String name() {
        return name;
    }

    long pid() {
        return process.pid();
    }

    boolean isAlive() {
        return process.isAlive();
    }

    /** Writes a command line to the node's stdin (arm, go). */
    synchronized void command(String line) {
        try {
            stdin.write(line + "\n");
            stdin.flush();
        } catch (IOException ignored) {
            // the node is gone
        }
    }

    /** SIGSTOP: the process is frozen as {@code docker pause} would (all its threads, its timers, its sockets). */
    void pause() throws IOException, InterruptedException {
        signal("STOP");
    }

    /** SIGCONT. */
    void resume() throws IOException, InterruptedException {
        signal("CONT");
    }

    /** SIGKILL, as {@code kill -9}: no chance to release anything. */
    void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(5, TimeUnit.SECONDS);
    }

    /** SIGCONT (a frozen process can not handle SIGTERM) then SIGTERM. */
    void requestStop() {
        if (!process.isAlive()) {
            return;
        }
        try {
            signal("CONT");
        } catch (IOException | InterruptedException e) {
            // SIGTERM below, SIGKILL in awaitStop if it stays
        }
        process.toHandle().destroy();
    }

    /** Waits until the deadline ({@link System#nanoTime()}) for the exit, then SIGKILL. */
    void awaitStop(long deadlineNanos) {
        try {
            if (!process.waitFor(Math.max(0, deadlineNanos - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                process.destroyForcibly();
                process.waitFor(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
    }

    private void signal(String signal) throws IOException, InterruptedException {
        if (!process.isAlive()) {
            return;
        }
        // the shell's built-in kill: always there, unlike /bin/kill (procps) on minimal systems
        Process kill = new ProcessBuilder(
                        "/bin/sh", "-c", "kill -s \"$1\" \"$2\"", "sh", signal, Long.toString(process.pid()))
                .redirectErrorStream(true)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .start();
        if (!kill.waitFor(5, TimeUnit.SECONDS) || kill.exitValue() != 0) {
            kill.destroyForcibly();
            throw new IOException("kill -" + signal + " " + process.pid() + " failed");
        }
    }
}
