package dev.pglease.compare;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/** A three-member etcd cluster on loopback, each member its own process with a private data dir. */
final class EtcdCluster implements Store {
    static final String BINARY = "/usr/bin/etcd";
    private static final HttpClient HTTP =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();

    private final Path dir;
    private final int n;
    private final int[] clientPorts;
    private final int[] peerPorts;
    private final Process[] procs;
    private final long[] deadTicks;

    static boolean available() {
        return Files.isExecutable(Path.of(BINARY));
    }

    EtcdCluster(Path dir, int n) {
        this.dir = dir;
        this.n = n;
        this.clientPorts = new int[n];
        this.peerPorts = new int[n];
        this.procs = new Process[n];
        this.deadTicks = new long[n];
        for (int i = 0; i < n; i++) {
            clientPorts[i] = Os.freePort();
            peerPorts[i] = Os.freePort();
        }
        for (int i = 0; i < n; i++) {
            start(i, true);
        }
        awaitHealthy(Duration.ofSeconds(30));
    }

    private void start(int i, boolean fresh) {
        String initial = java.util.stream.IntStream.range(0, n)
                .mapToObj(j -> "m" + j + "=http://127.0.0.1:" + peerPorts[j])
                .collect(Collectors.joining(","));
        List<String> cmd = List.of(
                BINARY,
                "--name",
                "m" + i,
                "--data-dir",
                dir.resolve("m" + i).toString(),
                "--listen-client-urls",
                "http://127.0.0.1:" + clientPorts[i],
                "--advertise-client-urls",
                "http://127.0.0.1:" + clientPorts[i],
                "--listen-peer-urls",
                "http://127.0.0.1:" + peerPorts[i],
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:" + peerPorts[i],
                "--initial-cluster",
                initial,
                "--initial-cluster-state",
                fresh ? "new" : "existing",
                "--initial-cluster-token",
                "compare-" + dir.getFileName(),
                "--heartbeat-interval",
                "100",
                "--election-timeout",
                "1000",
                "--logger",
                "zap",
                "--log-level",
                "warn");
        try {
            Files.createDirectories(dir);
            procs[i] = dev.pglease.testkit.ServerProcess.start(cmd, dir.resolve("m" + i + ".log"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    void awaitHealthy(Duration timeout) {
        dev.pglease.testkit.ServerProcess.await(
                "etcd cluster did not elect a leader", timeout, 100, () -> leaderIndex() >= 0, dir);
    }

    /** Index of the member that is the Raft leader, -1 if none answers. */
    int leaderIndex() {
        for (int i = 0; i < n; i++) {
            if (procs[i] == null || !procs[i].isAlive()) {
                continue;
            }
            String s = post(i, "/v3/maintenance/status", "{}");
            if (s == null) {
                continue;
            }
            Matcher m = Pattern.compile("\"member_id\":\"?(\\d+)").matcher(s);
            Matcher l = Pattern.compile("\"leader\":\"?(\\d+)").matcher(s);
            if (m.find() && l.find()) {
                if (m.group(1).equals(l.group(1))) {
                    return i;
                }
            }
        }
        return -1;
    }

    private String post(int i, String path, String body) {
        try {
            HttpResponse<String> r = HTTP.send(
                    HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + clientPorts[i] + path))
                            .timeout(Duration.ofSeconds(1))
                            .POST(HttpRequest.BodyPublishers.ofString(body))
                            .build(),
                    HttpResponse.BodyHandlers.ofString());
            return r.statusCode() == 200 ? r.body() : null;
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    /** kill -9 one member. */
    void kill(int i) {
        long t = Os.cpuTicks(procs[i].pid());
        deadTicks[i] += Math.max(0, t);
        dev.pglease.testkit.ServerProcess.kill(procs[i]);
    }

    /** Restarts a killed member with its data dir. */
    void restart(int i) {
        start(i, false);
    }

    int size() {
        return n;
    }

    @Override
    public String connectString() {
        return java.util.Arrays.stream(clientPorts)
                .mapToObj(p -> "http://127.0.0.1:" + p)
                .collect(Collectors.joining(","));
    }

    @Override
    public List<Long> pids() {
        List<Long> out = new ArrayList<>();
        for (Process p : procs) {
            if (p != null && p.isAlive()) {
                out.add(p.pid());
            }
        }
        return out;
    }

    @Override
    public long cpuTicks() {
        long sum = 0;
        for (int i = 0; i < n; i++) {
            sum += deadTicks[i];
            if (procs[i] != null && procs[i].isAlive()) {
                sum += Math.max(0, Os.cpuTicks(procs[i].pid()));
            }
        }
        return sum;
    }

    @Override
    public long requests() {
        long sum = 0;
        for (int i = 0; i < n; i++) {
            try {
                HttpResponse<String> r = HTTP.send(
                        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + clientPorts[i] + "/metrics"))
                                .timeout(Duration.ofSeconds(2))
                                .GET()
                                .build(),
                        HttpResponse.BodyHandlers.ofString());
                for (String line : r.body().split("\n")) {
                    if (line.startsWith("grpc_server_msg_received_total{")) {
                        sum += (long) Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
                    }
                }
            } catch (IOException e) {
                // member down
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        return sum;
    }

    @Override
    public String requestCounterName() {
        return "gRPC messages received (grpc_server_msg_received_total, all members)";
    }

    @Override
    public Set<Integer> clientPorts() {
        return java.util.Arrays.stream(clientPorts).boxed().collect(Collectors.toSet());
    }

    @Override
    public int clientConnections() {
        return Os.establishedTo(clientPorts());
    }

    @Override
    public String describe() {
        return Os.runOutput(List.of(BINARY, "--version")).lines().findFirst().orElse("etcd") + ", " + n
                + " members, heartbeat 100 ms, election timeout 1000 ms";
    }

    @Override
    public void close() {
        for (Process p : procs) {
            if (p != null) {
                p.destroyForcibly();
            }
        }
        for (Process p : procs) {
            if (p != null) {
                try {
                    p.waitFor();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }
}
