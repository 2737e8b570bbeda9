package dev.pglease.compare;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;

/**
 * One election candidate in its own JVM, for one backend. Speaks the JSON-lines contract of the pglease
 * {@code node} command on stdout: {@code started}, {@code elected}, {@code revoked}, {@code released} and
 * {@code write} events, each with {@code t} (epoch ms).
 *
 * <p>While it believes it leads, the candidate writes to a shared resource every {@code work-interval}: one
 * transaction on the resource database that moves a forward-only fence ({@code compare_fence}) to the
 * backend's token and appends to {@code compare_log}. Backends without a token write without a fence check;
 * the harness counts afterwards which of those writes a token would have rejected.
 *
 * <p>Arguments are {@code key=value}: backend, lease, holder, store, resource, lease-ms, renew-ms, retry-ms,
 * work-ms.
 */
public final class Candidate {

    /** The leadership the candidate currently believes it holds. */
    record Term(Long token, BooleanSupplier valid) {}

    /** One backend's campaign logic. {@link #run} blocks; {@link #shutdown} releases (graceful stop). */
    interface Backend {
        void run() throws Exception;

        void shutdown() throws Exception;
    }

    final Map<String, String> args;
    final String backendName;
    final String lease;
    final String holder;
    final long leaseMs;
    final long renewMs;
    final long retryMs;
    final long workMs;
    private final AtomicReference<Term> term = new AtomicReference<>();
    private final PrintStream out;

    Candidate(Map<String, String> args, PrintStream out) {
        this.args = args;
        this.out = out;
        this.backendName = args.get("backend");
        this.lease = args.getOrDefault("lease", "compare");
        this.holder = args.getOrDefault(
                "holder", backendName + "-" + ProcessHandle.current().pid());
        this.leaseMs = Long.parseLong(args.getOrDefault("lease-ms", "4000"));
        this.renewMs = Long.parseLong(args.getOrDefault("renew-ms", "3000"));
        this.retryMs = Long.parseLong(args.getOrDefault("retry-ms", "1000"));
        this.workMs = Long.parseLong(args.getOrDefault("work-ms", "50"));
    }

    public static void main(String[] argv) throws Exception {
        Map<String, String> args = new LinkedHashMap<>();
        for (String a : argv) {
            int i = a.indexOf('=');
            args.put(a.substring(0, i), a.substring(i + 1));
        }
        PrintStream out =
                new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);
        Candidate c = new Candidate(args, out);
        c.start();
    }

    private void start() throws Exception {
        Backend backend = switch (backendName) {
            case "pglease", "pglease-fast" -> PgleaseBackend.create(this);
            case "etcd" -> new EtcdBackend(this);
            case "zookeeper" -> new ZkBackend(this);
            case "shedlock" -> new ShedlockBackend(this);
            case "advisory" -> new AdvisoryBackend(this);
            default -> throw new IllegalArgumentException("unknown backend " + backendName);
        };
        emit("started", Map.of("pid", ProcessHandle.current().pid()));
        Thread main = Thread.currentThread();
        Runtime.getRuntime()
                .addShutdownHook(new Thread(
                        () -> {
                            Term t = term.getAndSet(null);
                            try {
                                backend.shutdown();
                            } catch (Exception e) {
                                System.err.println("shutdown: " + e);
                            }
                            emit("released", t == null || t.token() == null ? Map.of() : Map.of("token", t.token()));
                            main.interrupt();
                        },
                        "candidate-shutdown"));
        Thread worker = new Thread(this::workLoop, "candidate-work");
        worker.setDaemon(true);
        worker.start();
        backend.run();
    }

    // ---------------------------------------------------------------- events

    synchronized void emit(String event, Map<String, ?> fields) {
        StringBuilder sb = new StringBuilder(160);
        sb.append("{\"event\":\"")
                .append(event)
                .append("\",\"backend\":\"")
                .append(backendName)
                .append("\",\"lease\":\"")
                .append(lease)
                .append("\",\"holder\":\"")
                .append(holder)
                .append('"');
        for (Map.Entry<String, ?> e : fields.entrySet()) {
            sb.append(",\"").append(e.getKey()).append("\":");
            Object v = e.getValue();
            if (v instanceof Number || v instanceof Boolean) {
                sb.append(v);
            } else {
                sb.append('"')
                        .append(String.valueOf(v)
                                .replace("\\", "\\\\")
                                .replace("\"", "'")
                                .replace("\n", " "))
                        .append('"');
            }
        }
        sb.append(",\"t\":").append(System.currentTimeMillis()).append('}');
        out.println(sb);
    }

    /** Called by a backend when it has become leader. */
    void elected(Long token, BooleanSupplier valid) {
        term.set(new Term(token, valid));
        emit("elected", token == null ? Map.of() : Map.of("token", token));
    }

    /** Called by a backend when it has learned that it lost leadership. */
    void revoked(String reason) {
        Term t = term.getAndSet(null);
        if (t == null) {
            return;
        }
        Map<String, Object> f = new LinkedHashMap<>();
        if (t.token() != null) {
            f.put("token", t.token());
        }
        f.put("reason", reason);
        emit("revoked", f);
    }

    boolean isLeader() {
        return term.get() != null;
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    // ---------------------------------------------------------------- protected resource

    private void workLoop() {
        String url = args.get("resource");
        Connection conn = null;
        while (true) {
            long next = System.currentTimeMillis() + workMs;
            Term t = term.get();
            if (url != null && t != null && t.valid().getAsBoolean()) {
                long start = System.currentTimeMillis();
                String result;
                try {
                    if (conn == null) {
                        conn = DriverManager.getConnection(url);
                        conn.setAutoCommit(false);
                    }
                    result = write(conn, t.token()) ? "accepted" : "rejected";
                } catch (SQLException e) {
                    result = "error";
                    try {
                        if (conn != null) {
                            conn.close();
                        }
                    } catch (SQLException ignored) {
                        // already broken
                    }
                    conn = null;
                }
                Map<String, Object> f = new LinkedHashMap<>();
                if (t.token() != null) {
                    f.put("token", t.token());
                }
                f.put("result", result);
                f.put("start", start);
                emit("write", f);
            }
            long wait = next - System.currentTimeMillis();
            if (wait > 0) {
                sleep(wait);
            }
        }
    }

    /** One protected write: forward-only fence on the backend's token (if any) plus a log row, one transaction. */
    private boolean write(Connection conn, Long token) throws SQLException {
        try {
            if (token != null) {
                try (PreparedStatement ps =
                        conn.prepareStatement("UPDATE compare_fence SET token = ? WHERE resource = ? AND token <= ?")) {
                    ps.setLong(1, token);
                    ps.setString(2, lease);
                    ps.setLong(3, token);
                    if (ps.executeUpdate() != 1) {
                        conn.rollback();
                        return false;
                    }
                }
            }
            try (PreparedStatement ps =
                    conn.prepareStatement("INSERT INTO compare_log(resource, holder, token) VALUES (?, ?, ?)")) {
                ps.setString(1, lease);
                ps.setString(2, holder);
                if (token == null) {
                    ps.setNull(3, java.sql.Types.BIGINT);
                } else {
                    ps.setLong(3, token);
                }
                ps.executeUpdate();
            }
            conn.commit();
            return true;
        } catch (SQLException e) {
            try {
                conn.rollback();
            } catch (SQLException ignored) {
                // connection broken
            }
            throw e;
        }
    }
}
