package dev.pglease.fault.kit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pglease.fault.History;
import dev.pglease.fault.Op;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * One candidate node as a separate process speaking the node command contract (JSON lines on stdout): a JVM, or any
 * program that speaks it (the Python and psql campaigners). Controllable by PID: pause/resume (SIGSTOP/SIGCONT),
 * kill -9, graceful SIGTERM, restart. Every line becomes an {@link Op} of the shared {@link History}, with the
 * node's times corrected by the wall-clock skew the kit gave it.
 */
public final class NodeProcess implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * How to run a node.
     *
     * @param mainClass     entry point of a JVM node (the node command, or a test-only variant); null for a program
     * @param program       a program that speaks the node command's contract instead of a JVM (e.g. {@code python3
     *                      campaigner.py}), or null for a JVM running {@code mainClass}
     * @param args          arguments (the kit adds nothing)
     * @param env           extra environment (e.g. libfaketime for a skewed wall clock)
     * @param clockOffsetMs how far ahead of the kit's clock the node's wall clock runs
     * @param netns         network namespace to run in, or null
     */
    public record Spec(
            String mainClass,
            List<String> program,
            List<String> args,
            Map<String, String> env,
            long clockOffsetMs,
            String netns) {
        public Spec {
            if ((mainClass == null) == (program == null)) {
                throw new IllegalArgumentException(
                        "a node runs either a JVM main class or a program, got " + mainClass + " and " + program);
            }
            program = program == null ? null : List.copyOf(program);
        }

        /** A JVM node running {@code mainClass}. */
        public Spec(String mainClass, List<String> args, Map<String, String> env, long clockOffsetMs, String netns) {
            this(mainClass, null, args, env, clockOffsetMs, netns);
        }

        /** A node that runs {@code program} followed by {@code args}. */
        public static Spec program(
                List<String> program, List<String> args, Map<String, String> env, long clockOffsetMs, String netns) {
            return new Spec(null, program, args, env, clockOffsetMs, netns);
        }

        /** Whether this node is a JVM (and takes the JVM node's fault-injection options). */
        public boolean jvm() {
            return program == null;
        }

        public Spec withArgs(List<String> newArgs) {
            return new Spec(mainClass, program, newArgs, env, clockOffsetMs, netns);
        }

        public Spec withSkew(Map<String, String> newEnv, long offsetMs) {
            return new Spec(mainClass, program, args, newEnv, offsetMs, netns);
        }
    }

    private final String name;
    private final History history;
    private final Path logDir;
    private volatile Spec spec;
    private volatile Process process;
    private volatile String holder;
    private volatile Long leaderToken;
    private volatile boolean paused;
    private volatile long lastLineMs;
    private int incarnation;
    private final List<String> tail = new ArrayList<>();
    /** The leases this incarnation reports owning (a group member: its shards). */
    private final java.util.Set<String> owned = java.util.concurrent.ConcurrentHashMap.newKeySet();
    /** One copy of each holder id and lease name (a group run records many operations). */
    private final Map<String, String> names = new java.util.concurrent.ConcurrentHashMap<>();

    public NodeProcess(String name, Spec spec, History history, Path logDir) {
        this.name = name;
        this.spec = spec;
        this.history = history;
        this.logDir = logDir;
    }

    public static String testClassPath() {
        return dev.pglease.testkit.JavaProcess.classpath();
    }

    public synchronized void start() {
        if (process != null && process.isAlive()) {
            throw new IllegalStateException(name + " already running");
        }
        List<String> cmd = new ArrayList<>();
        if (spec.netns() != null) {
            cmd.addAll(List.of("ip", "netns", "exec", spec.netns()));
        }
        if (spec.jvm()) {
            cmd.addAll(dev.pglease.testkit.JavaProcess.command(
                    List.of(
                            "-Xmx96m",
                            "-Xss512k",
                            "-XX:+UseSerialGC",
                            "-XX:TieredStopAtLevel=1",
                            "-XX:CICompilerCount=1",
                            "-Xshare:auto",
                            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                            "-Dorg.slf4j.simpleLogger.showDateTime=true",
                            "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS"),
                    spec.mainClass(),
                    spec.args()));
        } else {
            cmd.addAll(spec.program());
            cmd.addAll(spec.args());
        }
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().putAll(spec.env());
        incarnation++;
        pb.redirectError(logDir.resolve(name + "-" + incarnation + ".stderr").toFile());
        holder = null;
        leaderToken = null;
        owned.clear();
        paused = false;
        try {
            process = pb.start();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        Process p = process;
        // the offset of this process's clock: lines read after a restart with another skew are still its own
        long offset = spec.clockOffsetMs();
        Thread reader = new Thread(() -> readLoop(p, offset), "node-" + name + "-stdout");
        reader.setDaemon(true);
        reader.start();
    }

    private void readLoop(Process p, long offset) {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                lastLineMs = System.currentTimeMillis();
                synchronized (tail) {
                    tail.add(line);
                    if (tail.size() > 50) {
                        tail.remove(0);
                    }
                }
                if (line.startsWith("{")) {
                    try {
                        record(JSON.readTree(line), offset);
                    } catch (IOException | RuntimeException e) {
                        // not a history line
                    }
                }
            }
        } catch (IOException ignored) {
            // process gone
        }
    }

    private static long t(JsonNode n, String field, long fallback, long offset) {
        JsonNode v = n.get(field);
        return v == null || v.isNull() ? fallback : v.asLong() - offset;
    }

    private static Long optLong(JsonNode n, String field) {
        JsonNode v = n.get(field);
        return v == null || v.isNull() || !v.canConvertToLong() ? null : v.asLong();
    }

    private String shared(String name) {
        return name == null ? null : names.computeIfAbsent(name, k -> k);
    }

    private void record(JsonNode n, long offset) {
        String event = n.path("event").asText("");
        long now = System.currentTimeMillis();
        String h = shared(n.hasNonNull("holder") ? n.get("holder").asText() : holder);
        String lease = shared(n.hasNonNull("lease") ? n.get("lease").asText() : null);
        long t = t(n, "t", now, offset);
        Long token = optLong(n, "token");
        Long deadline = n.hasNonNull("deadline") ? t(n, "deadline", 0, offset) : null;
        String result = n.path("result").asText("");
        switch (event) {
            case "started" -> {
                holder = h;
                add(
                        lease,
                        Op.Kind.NOTE,
                        Op.Outcome.OK,
                        h,
                        null,
                        t,
                        t,
                        null,
                        null,
                        "started pid " + n.path("pid").asText());
            }
            case "elected" -> {
                leaderToken = token;
                if (lease != null) {
                    owned.add(lease);
                }
                add(lease, Op.Kind.ELECTED, Op.Outcome.OK, h, token, t, t, null, null, null);
            }
            case "revoked" -> {
                leaderToken = null;
                if (lease != null) {
                    owned.remove(lease);
                }
                add(
                        lease,
                        Op.Kind.REVOKED,
                        Op.Outcome.OK,
                        h,
                        token,
                        t,
                        t,
                        null,
                        null,
                        n.path("reason").asText(null));
            }
            case "released" -> {
                leaderToken = null;
                if (lease != null) {
                    owned.remove(lease);
                }
                add(lease, Op.Kind.RELEASE, Op.Outcome.OK, h, token, t, t, null, null, null);
            }
            case "acquire", "renew" -> {
                Op.Outcome o = switch (result) {
                    case "granted", "ok" -> Op.Outcome.OK;
                    case "denied", "lost" -> Op.Outcome.FAIL;
                    default -> Op.Outcome.UNKNOWN;
                };
                add(
                        lease,
                        event.equals("acquire") ? Op.Kind.ACQUIRE : Op.Kind.RENEW,
                        o,
                        h,
                        token,
                        t(n, "sent", t, offset),
                        t,
                        deadline,
                        null,
                        o == Op.Outcome.OK ? null : result);
            }
            case "write" -> {
                Op.Outcome o = switch (result) {
                    case "accepted" -> Op.Outcome.OK;
                    case "rejected" -> Op.Outcome.FAIL;
                    default -> Op.Outcome.UNKNOWN;
                };
                add(
                        lease,
                        Op.Kind.WRITE,
                        o,
                        h,
                        token,
                        t(n, "start", t, offset),
                        t,
                        deadline,
                        optLong(n, "value"),
                        o == Op.Outcome.OK
                                ? null
                                : result
                                        + (n.hasNonNull("reason")
                                                ? ": " + n.get("reason").asText()
                                                : ""));
            }
            case "database-error" ->
                add(
                        lease,
                        Op.Kind.NOTE,
                        Op.Outcome.OK,
                        h,
                        token,
                        t,
                        t,
                        null,
                        null,
                        event + (n.hasNonNull("reason") ? ": " + n.get("reason").asText() : ""));
            default -> add(lease, Op.Kind.NOTE, Op.Outcome.OK, h, token, t, t, null, null, event);
        }
    }

    private void add(
            String lease,
            Op.Kind kind,
            Op.Outcome outcome,
            String h,
            Long token,
            long invoke,
            long complete,
            Long deadline,
            Long value,
            String detail) {
        history.add(
                new Op(0, name, h, kind, outcome, token, invoke, complete, deadline, value, null, null, detail, lease));
    }

    public String name() {
        return name;
    }

    public Spec spec() {
        return spec;
    }

    public void spec(Spec newSpec) {
        this.spec = newSpec;
    }

    /** Holder id of the running incarnation (null until it printed "started"). */
    public String holder() {
        return holder;
    }

    /** The leases this incarnation reports owning now (a group member's shards), by its own events. */
    public java.util.Set<String> ownedLeases() {
        return java.util.Set.copyOf(owned);
    }

    /** Token of the leadership this node last reported (null if it does not lead). */
    public Long leaderToken() {
        return leaderToken;
    }

    public boolean alive() {
        Process p = process;
        return p != null && p.isAlive();
    }

    public boolean paused() {
        return paused;
    }

    public long pid() {
        Process p = process;
        return p == null ? -1 : p.pid();
    }

    public long lastLineMs() {
        return lastLineMs;
    }

    public synchronized void pause() {
        if (alive() && !paused) {
            Procs.signal(pid(), "STOP");
            paused = true;
        }
    }

    public synchronized void resume() {
        if (alive() && paused) {
            Procs.signal(pid(), "CONT");
        }
        paused = false;
    }

    /** kill -9. */
    public synchronized void kill() {
        Process p = process;
        if (p != null && p.isAlive()) {
            Procs.signal(p.pid(), "KILL");
            waitFor(p, 10_000);
        }
        paused = false;
        leaderToken = null;
        owned.clear();
    }

    /** SIGTERM and wait for a graceful exit (kill -9 after the timeout). Returns the exit code, or -1. */
    public synchronized int stop(long timeoutMs) {
        Process p = process;
        if (p == null || !p.isAlive()) {
            return p == null ? -1 : p.exitValue();
        }
        if (paused) {
            Procs.signal(p.pid(), "CONT");
            paused = false;
        }
        Procs.signal(p.pid(), "TERM");
        if (!waitFor(p, timeoutMs)) {
            Procs.signal(p.pid(), "KILL");
            waitFor(p, 10_000);
            return -1;
        }
        leaderToken = null;
        owned.clear();
        return p.exitValue();
    }

    private static boolean waitFor(Process p, long ms) {
        try {
            return p.waitFor(ms, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Waits until this incarnation printed its "started" line. */
    public boolean awaitStarted(long timeoutMs) {
        long until = System.currentTimeMillis() + timeoutMs;
        while (holder == null && System.currentTimeMillis() < until && alive()) {
            PgServer.sleep(20);
        }
        return holder != null;
    }

    public String recentOutput() {
        synchronized (tail) {
            return String.join("\n", tail);
        }
    }

    public Map<String, Object> describe() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("name", name);
        m.put("pid", pid());
        m.put("holder", holder);
        m.put("leaderToken", leaderToken);
        m.put("paused", paused);
        m.put("alive", alive());
        return m;
    }

    @Override
    public void close() {
        Process p = process;
        if (p != null && p.isAlive()) {
            if (paused) {
                Procs.signal(p.pid(), "CONT");
            }
            Procs.signal(p.pid(), "KILL");
            waitFor(p, 10_000);
        }
    }
}
