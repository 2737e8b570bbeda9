package dev.pglease.anylang;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pglease.fault.kit.Procs;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * One campaigner process started by a test, its JSON-line events collected as they come. Signalled by its own PID
 * only; {@link #close()} kills it if it still runs.
 */
final class CampaignerProcess implements AutoCloseable {

    private static final ObjectMapper JSON = new ObjectMapper();
    private final String name;
    private final Process process;
    private final Path dir;
    private final Path stderr;
    private final List<Map<String, Object>> events = new CopyOnWriteArrayList<>();
    private final List<String> lines = new CopyOnWriteArrayList<>();
    private final Thread reader;

    private CampaignerProcess(String name, Process process, Path dir) {
        this.name = name;
        this.process = process;
        this.dir = dir;
        this.stderr = dir.resolve("stderr");
        this.reader = new Thread(this::read, "campaigner-" + name);
        reader.setDaemon(true);
        reader.start();
    }

    /**
     * Starts {@code program args...} with the login's password in PGPASSWORD, and a directory of its own for its
     * stderr and its temporary files (a campaigner killed with SIGKILL can not remove them itself).
     */
    static CampaignerProcess start(String name, List<String> program, List<String> args, Campaigners.Login login)
            throws IOException {
        List<String> command = new ArrayList<>(program);
        command.addAll(args);
        Path dir = Files.createTempDirectory("pglease-campaigner-" + name);
        ProcessBuilder pb =
                new ProcessBuilder(command).redirectError(dir.resolve("stderr").toFile());
        pb.environment().put("PGPASSWORD", login.password());
        pb.environment().put("TMPDIR", dir.toString());
        pb.environment().remove("PGOPTIONS");
        return new CampaignerProcess(name, pb.start(), dir);
    }

    private void read() {
        try (BufferedReader r =
                new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                lines.add(line);
                try {
                    events.add(JSON.readValue(line, new TypeReference<Map<String, Object>>() {}));
                } catch (IOException notJson) {
                    // kept in lines: the contract test asserts that every line is a JSON object
                }
            }
        } catch (IOException gone) {
            // the process ended
        }
    }

    String name() {
        return name;
    }

    long pid() {
        return process.pid();
    }

    boolean alive() {
        return process.isAlive();
    }

    /** Every line the process wrote to stdout. */
    List<String> lines() {
        return List.copyOf(lines);
    }

    /** The events named {@code event}, in order. */
    List<Map<String, Object>> events(String event) {
        return events.stream().filter(e -> event.equals(e.get("event"))).toList();
    }

    List<Map<String, Object>> events() {
        return List.copyOf(events);
    }

    /** The holder id it announced in its {@code started} event. */
    String holder() {
        return events("started").stream()
                .map(e -> (String) e.get("holder"))
                .findFirst()
                .orElseThrow(() -> new AssertionError(name + " has not started:\n" + output()));
    }

    /** Waits for the first event named {@code event} that matches {@code filter}; fails with the output if none. */
    Map<String, Object> await(String event, Predicate<Map<String, Object>> filter, Duration timeout) {
        long until = System.nanoTime() + timeout.toNanos();
        while (true) {
            for (Map<String, Object> e : events(event)) {
                if (filter.test(e)) {
                    return e;
                }
            }
            if (System.nanoTime() - until > 0) {
                throw new AssertionError(
                        "no " + event + " event from " + name + " within " + timeout + ":\n" + output());
            }
            sleep(10);
        }
    }

    Map<String, Object> await(String event, Duration timeout) {
        return await(event, e -> true, timeout);
    }

    /** Sends a signal (STOP, CONT, TERM, KILL) to this process, by its PID. */
    void signal(String signal) {
        Procs.signal(pid(), signal);
    }

    /** SIGTERM, then waits for the exit; returns the exit code. */
    int terminate(Duration timeout) throws InterruptedException {
        signal("TERM");
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new AssertionError(name + " did not exit within " + timeout + " of SIGTERM:\n" + output());
        }
        reader.join(5_000);
        return process.exitValue();
    }

    /** kill -9, and waits until it is gone. */
    void kill() throws InterruptedException {
        signal("KILL");
        process.waitFor(10, TimeUnit.SECONDS);
        reader.join(5_000);
    }

    /** stdout and stderr, for failure messages. */
    String output() {
        String err;
        try {
            err = Files.readString(stderr);
        } catch (IOException e) {
            err = "(stderr unreadable: " + e + ")";
        }
        return "--- " + name + " stdout\n" + String.join("\n", lines) + "\n--- " + name + " stderr\n" + err;
    }

    static long number(Map<String, Object> event, String field) {
        Object v = event.get(field);
        if (!(v instanceof Number n)) {
            throw new AssertionError("event " + event + " has no number " + field);
        }
        return n.longValue();
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() throws IOException {
        if (process.isAlive()) {
            signal("CONT");
            signal("KILL");
            try {
                process.waitFor(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        try (var files = Files.list(dir)) {
            for (Path f : (Iterable<Path>) files::iterator) {
                Files.deleteIfExists(f);
            }
        }
        Files.deleteIfExists(dir);
    }
}
