package dev.pglease.compare;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/** One backend under test: its store, its candidate processes and every event they printed. */
final class Lane {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One line a candidate printed. */
    record Event(Cand cand, String type, long t, Long token, String result, long start, String reason) {}

    /** One candidate process. */
    final class Cand {
        final Process process;
        final long pid;
        final int index;
        volatile String holder;
        volatile boolean started;
        volatile boolean leader;
        volatile Long token;
        volatile long electedAt;

        Cand(Process p, int index) {
            this.process = p;
            this.pid = p.pid();
            this.index = index;
        }

        @Override
        public String toString() {
            return backend + "#" + index + "(" + pid + ")";
        }
    }

    final String backend;
    final String title;
    final boolean hasToken;
    final String tokenDescription;
    Store store;
    String storeConnect;
    String lease;
    final String resourceUrl;
    final Path dir;
    final Timings timings;
    final List<Cand> live = new CopyOnWriteArrayList<>();
    final List<Cand> all = new CopyOnWriteArrayList<>();
    final List<Event> events = new CopyOnWriteArrayList<>();
    final Results results = new Results();
    private int seq;
    /** Set when the lane could not elect a leader; its remaining phases are skipped. */
    volatile String failed;

    Lane(
            String backend,
            String title,
            boolean hasToken,
            String tokenDescription,
            Store store,
            String resourceUrl,
            Path dir,
            Timings timings) {
        this.backend = backend;
        this.title = title;
        this.hasToken = hasToken;
        this.tokenDescription = tokenDescription;
        this.store = store;
        this.storeConnect = store.connectString();
        this.lease = "compare-" + backend;
        this.resourceUrl = resourceUrl;
        this.dir = dir;
        this.timings = timings;
    }

    synchronized Cand spawn() {
        int i = seq++;
        List<String> cmd = new ArrayList<>(List.of(
                Os.javaBin(),
                "-Xmx96m",
                "-Xss512k",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-XX:-UsePerfData",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-cp",
                Os.classPath(),
                Candidate.class.getName(),
                "backend=" + backend,
                "lease=" + lease,
                "holder=" + backend + "-" + i,
                "store=" + storeConnect,
                "resource=" + resourceUrl,
                "lease-ms=" + timings.leaseMs(),
                "renew-ms=" + timings.renewMs(),
                "retry-ms=" + timings.retryMs(),
                "work-ms=" + timings.workMs()));
        try {
            Files.createDirectories(dir);
            Process p = new ProcessBuilder(cmd)
                    .redirectError(ProcessBuilder.Redirect.appendTo(
                            dir.resolve("cand-" + i + ".err").toFile()))
                    .start();
            Cand c = new Cand(p, i);
            live.add(c);
            all.add(c);
            Thread reader = new Thread(() -> read(c), "read-" + c);
            reader.setDaemon(true);
            reader.start();
            return c;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private void read(Cand c) {
        try (BufferedReader r =
                new BufferedReader(new InputStreamReader(c.process.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                if (!line.startsWith("{")) {
                    continue;
                }
                JsonNode n;
                try {
                    n = JSON.readTree(line);
                } catch (IOException e) {
                    continue;
                }
                String type = n.path("event").asText();
                Long token = n.hasNonNull("token") ? n.get("token").asLong() : null;
                Event e = new Event(
                        c,
                        type,
                        n.path("t").asLong(),
                        token,
                        n.path("result").asText(null),
                        n.path("start").asLong(0),
                        n.path("reason").asText(null));
                switch (type) {
                    case "started" -> {
                        c.holder = n.path("holder").asText();
                        c.started = true;
                    }
                    case "elected" -> {
                        c.leader = true;
                        c.token = token;
                        c.electedAt = e.t();
                    }
                    case "revoked", "released" -> c.leader = false;
                    default -> {}
                }
                events.add(e);
                synchronized (this) {
                    notifyAll();
                }
            }
        } catch (IOException e) {
            // process gone
        }
        c.leader = false;
        synchronized (this) {
            notifyAll();
        }
    }

    /** The live candidate that most recently became leader and still says so; null if none. */
    Cand leader() {
        Cand best = null;
        for (Cand c : live) {
            if (c.leader && c.process.isAlive() && (best == null || c.electedAt > best.electedAt)) {
                best = c;
            }
        }
        return best;
    }

    /** First {@code elected} event by a candidate other than {@code exclude} with t >= after; null on timeout. */
    Event awaitElected(long after, Cand exclude, long timeoutMs) {
        long end = System.currentTimeMillis() + timeoutMs;
        synchronized (this) {
            while (true) {
                for (Event e : events) {
                    if (e.type().equals("elected") && e.t() >= after && e.cand() != exclude) {
                        return e;
                    }
                }
                long wait = end - System.currentTimeMillis();
                if (wait <= 0) {
                    return null;
                }
                try {
                    wait(Math.min(wait, 100));
                } catch (InterruptedException ex) {
                    Thread.currentThread().interrupt();
                    return null;
                }
            }
        }
    }

    /** Waits until {@code n} live candidates have started and one leads. */
    boolean awaitReady(int n, long timeoutMs) {
        long end = System.currentTimeMillis() + timeoutMs;
        synchronized (this) {
            while (System.currentTimeMillis() < end) {
                long started = live.stream()
                        .filter(c -> c.started && c.process.isAlive())
                        .count();
                if (started >= n && leader() != null) {
                    return true;
                }
                try {
                    wait(100);
                } catch (InterruptedException ex) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            }
        }
        return false;
    }

    void kill(Cand c) {
        c.process.destroyForcibly();
        live.remove(c);
        waitExit(c, 10_000);
    }

    /** SIGTERM and wait for exit; SIGKILL after 10 s. */
    void stop(Cand c) {
        c.process.destroy();
        if (!waitExit(c, 10_000)) {
            c.process.destroyForcibly();
            waitExit(c, 5_000);
        }
        live.remove(c);
    }

    boolean waitExit(Cand c, long ms) {
        try {
            return c.process.waitFor(ms, TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    void stopAll() {
        for (Cand c : live) {
            c.process.destroy();
        }
        for (Cand c : new ArrayList<>(live)) {
            if (!waitExit(c, 8_000)) {
                c.process.destroyForcibly();
                waitExit(c, 5_000);
            }
            live.remove(c);
        }
    }

    /** Last resort cleanup: every process this lane ever started. */
    void destroyAll() {
        for (Cand c : all) {
            if (c.process.isAlive()) {
                Os.signal(c.pid, "CONT");
                c.process.destroyForcibly();
            }
        }
    }

    List<Event> eventsBetween(long from, long to) {
        List<Event> out = new ArrayList<>();
        for (Event e : events) {
            if (e.t() >= from && e.t() <= to) {
                out.add(e);
            }
        }
        return out;
    }

    long electedBetween(long from, long to) {
        return eventsBetween(from, to).stream()
                .filter(e -> e.type().equals("elected"))
                .count();
    }

    /** Longest interval without an accepted protected write, in [from, to]. */
    long longestWriteGap(long from, long to) {
        long last = from;
        long gap = 0;
        List<Long> ts = eventsBetween(from, to).stream()
                .filter(e -> e.type().equals("write") && "accepted".equals(e.result()))
                .map(Event::t)
                .sorted()
                .toList();
        for (long t : ts) {
            gap = Math.max(gap, t - last);
            last = t;
        }
        return Math.max(gap, to - last);
    }
}
