package dev.pglease.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/** A {@code pglease node} started as a separate JVM by a test, with its JSON-line events collected. */
public final class NodeProcess implements AutoCloseable {

    private static final ObjectMapper MAPPER = new ObjectMapper();
    private final Process process;
    private final BlockingQueue<Map<String, Object>> events = new LinkedBlockingQueue<>();
    private final List<Map<String, Object>> all = java.util.Collections.synchronizedList(new ArrayList<>());

    private final Thread reader;

    private NodeProcess(Process process) {
        this.process = process;
        this.reader = new Thread(this::read, "node-" + process.pid());
        reader.setDaemon(true);
        reader.start();
    }

    /** The classpath of the running tests, to start other JVMs with. */
    public static String classpath() {
        return dev.pglease.testkit.JavaProcess.classpath();
    }

    public static NodeProcess start(String... args) throws IOException {
        List<String> command = dev.pglease.testkit.JavaProcess.command(
                dev.pglease.testkit.JavaProcess.SMALL, "dev.pglease.cli.Main", prepend("node", args));
        ProcessBuilder pb = new ProcessBuilder(command)
                .redirectError(ProcessBuilder.Redirect.appendTo(
                        new File(System.getProperty("java.io.tmpdir"), "pglease-node-stderr.log")));
        return new NodeProcess(pb.start());
    }

    @SuppressWarnings("unchecked")
    private void read() {
        try (BufferedReader r =
                new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                if (line.startsWith("{")) {
                    Map<String, Object> e;
                    try {
                        e = MAPPER.readValue(line, Map.class);
                    } catch (IOException notJson) {
                        continue;
                    }
                    all.add(e);
                    events.add(e);
                }
            }
        } catch (IOException ignored) {
            // process ended
        }
    }

    /** Waits for the next event matching {@code filter}, skipping others. */
    public Map<String, Object> await(Predicate<Map<String, Object>> filter, long timeoutMillis)
            throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        while (true) {
            long left = end - System.nanoTime();
            if (left <= 0) {
                throw new AssertionError("no matching event within " + timeoutMillis + " ms; saw " + all);
            }
            Map<String, Object> e = events.poll(left, TimeUnit.NANOSECONDS);
            if (e != null && filter.test(e)) {
                return e;
            }
        }
    }

    public static Predicate<Map<String, Object>> event(String name) {
        return e -> name.equals(e.get("event"));
    }

    public List<Map<String, Object>> events() {
        synchronized (all) {
            return List.copyOf(all);
        }
    }

    public long pid() {
        return process.pid();
    }

    public Process process() {
        return process;
    }

    /** Sends SIGTERM (by PID) and waits for the exit code. */
    public int terminate(long timeoutMillis) throws InterruptedException {
        // Through the handle: Process.destroy() would also close our end of the output pipe.
        if (!dev.pglease.testkit.JavaProcess.terminate(process, timeoutMillis)) {
            dev.pglease.testkit.JavaProcess.kill(process);
            throw new AssertionError("node " + pid() + " did not exit within " + timeoutMillis + " ms of SIGTERM");
        }
        reader.join(timeoutMillis);
        return process.exitValue();
    }

    static List<String> prepend(String first, String... rest) {
        List<String> all = new ArrayList<>();
        all.add(first);
        all.addAll(List.of(rest));
        return all;
    }

    @Override
    public void close() {
        dev.pglease.testkit.JavaProcess.kill(process);
    }
}
