package dev.pglease.compare;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

/** A three-server ZooKeeper ensemble, each server a QuorumPeerMain JVM with a private data dir. */
final class ZkEnsemble implements Store {
    static final int TICK_MS = 1000;
    private final Path dir;
    private final int n;
    private final int[] clientPorts;
    private final Process[] procs;
    private final long[] deadTicks;

    ZkEnsemble(Path dir, int n) {
        this.dir = dir;
        this.n = n;
        this.clientPorts = new int[n];
        this.procs = new Process[n];
        this.deadTicks = new long[n];
        int[] quorum = new int[n];
        int[] election = new int[n];
        for (int i = 0; i < n; i++) {
            clientPorts[i] = Os.freePort();
            quorum[i] = Os.freePort();
            election[i] = Os.freePort();
        }
        try {
            for (int i = 0; i < n; i++) {
                Path d = dir.resolve("s" + (i + 1));
                Files.createDirectories(d.resolve("data"));
                Files.writeString(d.resolve("data/myid"), Integer.toString(i + 1));
                StringBuilder cfg = new StringBuilder();
                cfg.append("tickTime=")
                        .append(TICK_MS)
                        .append('\n')
                        .append("initLimit=10\nsyncLimit=2\n")
                        .append("dataDir=")
                        .append(d.resolve("data"))
                        .append('\n')
                        .append("clientPort=")
                        .append(clientPorts[i])
                        .append('\n')
                        .append("clientPortAddress=127.0.0.1\n")
                        .append("admin.enableServer=false\n4lw.commands.whitelist=*\n")
                        .append("minSessionTimeout=")
                        .append(2 * TICK_MS)
                        .append('\n');
                for (int j = 0; j < n; j++) {
                    cfg.append("server.")
                            .append(j + 1)
                            .append("=127.0.0.1:")
                            .append(quorum[j])
                            .append(':')
                            .append(election[j])
                            .append('\n');
                }
                Files.writeString(d.resolve("zoo.cfg"), cfg);
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        for (int i = 0; i < n; i++) {
            start(i);
        }
        awaitHealthy(Duration.ofSeconds(60));
    }

    private void start(int i) {
        Path d = dir.resolve("s" + (i + 1));
        List<String> cmd = List.of(
                Os.javaBin(),
                "-Xmx128m",
                "-XX:+UseSerialGC",
                "-Xss512k",
                "-Dzookeeper.jmx.log4j.disable=true",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                "-cp",
                Os.classPath(),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                d.resolve("zoo.cfg").toString());
        procs[i] = dev.pglease.testkit.ServerProcess.start(cmd, d.resolve("server.log"));
    }

    void awaitHealthy(Duration timeout) {
        dev.pglease.testkit.ServerProcess.await(
                "ZooKeeper ensemble did not form",
                timeout,
                200,
                () -> {
                    int serving = 0;
                    boolean leader = false;
                    for (int i = 0; i < n; i++) {
                        String s = fourLetter(i, "srvr");
                        if (s != null && s.contains("Mode: ")) {
                            serving++;
                            leader |= s.contains("Mode: leader");
                        }
                    }
                    return leader && serving >= n / 2 + 1;
                },
                dir);
    }

    /** Sends a four-letter command; null when the server does not answer. */
    String fourLetter(int i, String cmd) {
        if (procs[i] == null || !procs[i].isAlive()) {
            return null;
        }
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", clientPorts[i]), 500);
            s.setSoTimeout(1000);
            OutputStream o = s.getOutputStream();
            o.write(cmd.getBytes(StandardCharsets.US_ASCII));
            o.flush();
            InputStream in = s.getInputStream();
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            return null;
        }
    }

    int leaderIndex() {
        for (int i = 0; i < n; i++) {
            String s = fourLetter(i, "srvr");
            if (s != null && s.contains("Mode: leader")) {
                return i;
            }
        }
        return -1;
    }

    void kill(int i) {
        deadTicks[i] += Math.max(0, Os.cpuTicks(procs[i].pid()));
        dev.pglease.testkit.ServerProcess.kill(procs[i]);
    }

    void restart(int i) {
        start(i);
    }

    @Override
    public String connectString() {
        return java.util.Arrays.stream(clientPorts)
                .mapToObj(p -> "127.0.0.1:" + p)
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
            String s = fourLetter(i, "mntr");
            if (s == null) {
                continue;
            }
            for (String line : s.split("\n")) {
                if (line.startsWith("zk_packets_received")) {
                    sum += Long.parseLong(line.split("\\s+")[1].trim());
                }
            }
        }
        return sum;
    }

    @Override
    public String requestCounterName() {
        return "packets received (mntr zk_packets_received, all servers; includes session pings)";
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
        return "ZooKeeper 3.9.5, " + n + " servers (QuorumPeerMain JVMs), tickTime " + TICK_MS
                + " ms, syncLimit 2, initLimit 10";
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
