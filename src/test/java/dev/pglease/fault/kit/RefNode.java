package dev.pglease.fault.kit;

import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A test-only candidate speaking the node command's JSON-lines contract, written straight from the protocol in docs/protocol.md
 * with knobs that break it on purpose, for the negative controls:
 * {@code --unfenced} writes the counter without the {@code FOR SHARE} lease check (only its local deadline is
 * checked, before a {@code --write-delay}), and {@code --synchronous-commit off} acknowledges grants the server has
 * not made durable, {@code --steal-after D} campaigns only from D after it first saw another holder's valid grant,
 * and then takes even a valid lease over. Not part of the library:
 * the checker must catch what these variants do.
 */
public final class RefNode {
    private final Map<String, String> opt;
    private final String schema;
    private final String lease;
    private final long leaseMs;
    private final long renewDeadlineMs;
    private final long retryMs;
    private final long workIntervalMs;
    private final long writeDelayMs;
    private final boolean unfenced;
    private final long stealAfterMs;
    /** With {@code --steal-after}: when this node first saw another holder's valid grant, or -1. */
    private long othersGrantSeenMs = -1;

    private final String syncCommit;
    private final String holder;
    private final AtomicBoolean stop = new AtomicBoolean();
    private Connection conn;
    private Long token;
    private long deadlineNanos;
    private long lastRenewNanos;

    private RefNode(Map<String, String> opt) {
        this.opt = opt;
        schema = opt.getOrDefault("schema", "pglease");
        lease = opt.get("lease");
        leaseMs = ms(opt.getOrDefault("lease-duration", "10s"));
        renewDeadlineMs = ms(opt.getOrDefault("renew-deadline", "6s"));
        retryMs = ms(opt.getOrDefault("retry-period", "2s"));
        workIntervalMs = ms(opt.getOrDefault("work-interval", "50ms"));
        writeDelayMs = ms(opt.getOrDefault("write-delay", "0ms"));
        unfenced = opt.containsKey("unfenced");
        stealAfterMs = ms(opt.getOrDefault("steal-after", "-1ms"));
        syncCommit = opt.getOrDefault("synchronous-commit", "on");
        byte[] r = new byte[4];
        new SecureRandom().nextBytes(r);
        holder = opt.getOrDefault("holder-label", "ref") + "-"
                + ProcessHandle.current().pid() + "-" + String.format("%02x%02x%02x%02x", r[0], r[1], r[2], r[3]);
    }

    static long ms(String d) {
        if (d.endsWith("ms")) {
            return Long.parseLong(d.substring(0, d.length() - 2));
        }
        if (d.endsWith("s")) {
            return (long) (Double.parseDouble(d.substring(0, d.length() - 1)) * 1000);
        }
        if (d.endsWith("m")) {
            return Long.parseLong(d.substring(0, d.length() - 1)) * 60_000;
        }
        return java.time.Duration.parse(d).toMillis();
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> opt = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("node")) {
                continue;
            }
            String key = a.substring(2);
            if (key.equals("unfenced") || key.equals("trace")) {
                opt.put(key, "true");
            } else {
                opt.put(key, args[++i]);
            }
        }
        RefNode n = new RefNode(opt);
        Runtime.getRuntime().addShutdownHook(new Thread(n::shutdown));
        n.run();
    }

    private static synchronized void emit(String json) {
        System.out.println(json);
        System.out.flush();
    }

    private String base(String event) {
        return "{\"event\":\"" + event + "\",\"lease\":\"" + lease + "\",\"holder\":\"" + holder + "\"";
    }

    private long wallDeadline() {
        return System.currentTimeMillis() + (deadlineNanos - System.nanoTime()) / 1_000_000;
    }

    private void run() {
        emit(base("started") + ",\"pid\":" + ProcessHandle.current().pid() + ",\"t\":" + System.currentTimeMillis()
                + "}");
        long nextWrite = 0;
        while (!stop.get()) {
            try {
                ensureConnection();
                if (token == null) {
                    if (stealAfterMs >= 0 && !stealing()) {
                        noticeOthersGrant();
                        sleep(retryMs); // a stealer does not campaign before its time
                        continue;
                    }
                    if (!acquire()) {
                        sleep(retryMs);
                    }
                    continue;
                }
                long now = System.nanoTime();
                if (now >= deadlineNanos) {
                    stepDown("deadline");
                    continue;
                }
                if (now - lastRenewNanos >= retryMs * 1_000_000) {
                    renew();
                    continue;
                }
                if (now >= nextWrite) {
                    write();
                    nextWrite = System.nanoTime() + workIntervalMs * 1_000_000;
                }
                sleep(Math.min(10, workIntervalMs));
            } catch (SQLException e) {
                closeConnection();
                sleep(Math.min(retryMs, 200));
            }
        }
    }

    private void ensureConnection() throws SQLException {
        if (conn == null) {
            conn = DriverManager.getConnection(opt.get("jdbc-url"));
            conn.setAutoCommit(true);
            try (var st = conn.createStatement()) {
                st.execute("SET synchronous_commit = " + syncCommit);
            }
        }
    }

    private void closeConnection() {
        if (conn != null) {
            try {
                conn.close();
            } catch (SQLException ignored) {
                // gone
            }
            conn = null;
        }
    }

    /** With {@code --steal-after}: from then on, take the lease over even while another holder's grant is valid. */
    private boolean stealing() {
        return stealAfterMs >= 0
                && othersGrantSeenMs >= 0
                && System.currentTimeMillis() - othersGrantSeenMs >= stealAfterMs;
    }

    private void noticeOthersGrant() throws SQLException {
        if (othersGrantSeenMs >= 0) {
            return;
        }
        try (PreparedStatement ps = conn.prepareStatement("SELECT 1 FROM " + schema + ".leases WHERE name = ?"
                + " AND holder IS NOT NULL AND holder <> ? AND expires_at > clock_timestamp()")) {
            ps.setString(1, lease);
            ps.setString(2, holder);
            try (ResultSet rs = ps.executeQuery()) {
                if (rs.next()) {
                    othersGrantSeenMs = System.currentTimeMillis();
                }
            }
        }
    }

    private boolean acquire() throws SQLException {
        long sent = System.currentTimeMillis();
        long tick = System.nanoTime();
        String sql = "INSERT INTO " + schema + ".leases AS l(name, holder, token, acquired_at, renewed_at, expires_at)"
                + " VALUES (?, ?, 1, clock_timestamp(), clock_timestamp(), clock_timestamp() + make_interval(secs => ?))"
                + " ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, token = l.token + 1,"
                + " acquired_at = clock_timestamp(), renewed_at = clock_timestamp(),"
                + " expires_at = clock_timestamp() + make_interval(secs => ?)"
                + " WHERE l.holder IS NULL OR l.expires_at <= clock_timestamp()"
                + (stealing() ? " OR l.holder <> EXCLUDED.holder" : "") + " RETURNING token";
        try (PreparedStatement ps = conn.prepareStatement(sql)) {
            ps.setString(1, lease);
            ps.setString(2, holder);
            ps.setDouble(3, leaseMs / 1000.0);
            ps.setDouble(4, leaseMs / 1000.0);
            ps.setQueryTimeout((int) Math.max(1, leaseMs / 1000));
            try (ResultSet rs = ps.executeQuery()) {
                if (rs.next()) {
                    token = rs.getLong(1);
                    deadlineNanos = tick + renewDeadlineMs * 1_000_000;
                    lastRenewNanos = tick;
                    emit(base("acquire") + ",\"result\":\"granted\",\"token\":" + token + ",\"sent\":" + sent
                            + ",\"t\":" + System.currentTimeMillis() + ",\"deadline\":" + wallDeadline() + "}");
                    emit(base("elected") + ",\"token\":" + token + ",\"t\":" + System.currentTimeMillis() + "}");
                    return true;
                }
                emit(base("acquire") + ",\"result\":\"denied\",\"sent\":" + sent + ",\"t\":"
                        + System.currentTimeMillis() + "}");
                return false;
            }
        } catch (SQLException e) {
            emit(base("acquire") + ",\"result\":\"error\",\"sent\":" + sent + ",\"t\":" + System.currentTimeMillis()
                    + "}");
            throw e;
        }
    }

    private void renew() throws SQLException {
        long sent = System.currentTimeMillis();
        long tick = System.nanoTime();
        String sql = "UPDATE " + schema + ".leases SET expires_at = clock_timestamp() + make_interval(secs => ?),"
                + " renewed_at = clock_timestamp() WHERE name = ? AND holder = ? AND token = ?"
                + " AND expires_at > clock_timestamp() RETURNING token";
        try (PreparedStatement ps = conn.prepareStatement(sql)) {
            ps.setDouble(1, leaseMs / 1000.0);
            ps.setString(2, lease);
            ps.setString(3, holder);
            ps.setLong(4, token);
            ps.setQueryTimeout((int) Math.max(1, renewDeadlineMs / 1000));
            try (ResultSet rs = ps.executeQuery()) {
                if (rs.next()) {
                    deadlineNanos = tick + renewDeadlineMs * 1_000_000;
                    lastRenewNanos = tick;
                    emit(base("renew") + ",\"result\":\"ok\",\"token\":" + token + ",\"sent\":" + sent + ",\"t\":"
                            + System.currentTimeMillis() + ",\"deadline\":" + wallDeadline() + "}");
                } else {
                    emit(base("renew") + ",\"result\":\"lost\",\"token\":" + token + ",\"sent\":" + sent + ",\"t\":"
                            + System.currentTimeMillis() + "}");
                    stepDown("lost");
                }
            }
        } catch (SQLException e) {
            emit(base("renew") + ",\"result\":\"error\",\"token\":" + token + ",\"sent\":" + sent + ",\"t\":"
                    + System.currentTimeMillis() + "}");
            lastRenewNanos = System.nanoTime() - retryMs * 1_000_000 + 100_000_000L; // retry soon
            throw e;
        }
    }

    private void stepDown(String reason) {
        emit(base("revoked") + ",\"token\":" + token + ",\"reason\":\"" + reason + "\",\"t\":"
                + System.currentTimeMillis() + "}");
        token = null;
    }

    private void write() throws SQLException {
        if (System.nanoTime() >= deadlineNanos) {
            return;
        }
        long start = System.currentTimeMillis();
        long deadline = wallDeadline();
        long tok = token;
        sleep(writeDelayMs); // work between the check and the write: where a pause hurts
        boolean ok = false;
        Long value = null;
        conn.setAutoCommit(false);
        try {
            boolean valid = true;
            if (!unfenced) {
                try (PreparedStatement ps = conn.prepareStatement("SELECT 1 FROM " + schema + ".leases WHERE name = ?"
                        + " AND holder = ? AND token = ? AND expires_at > clock_timestamp() FOR SHARE")) {
                    ps.setString(1, lease);
                    ps.setString(2, holder);
                    ps.setLong(3, tok);
                    try (ResultSet rs = ps.executeQuery()) {
                        valid = rs.next();
                    }
                }
            }
            if (valid) {
                try (PreparedStatement ps = conn.prepareStatement("INSERT INTO " + schema + ".fenced_counter AS f(name,"
                        + " value, token) VALUES (?, 1, ?) ON CONFLICT (name) DO UPDATE SET value = f.value + 1,"
                        + " token = EXCLUDED.token RETURNING value")) {
                    ps.setString(1, lease);
                    ps.setLong(2, tok);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        value = rs.getLong(1);
                    }
                }
                try (PreparedStatement ps = conn.prepareStatement("INSERT INTO " + schema + ".fenced_counter_log(name,"
                        + " token, holder, value) VALUES (?, ?, ?, ?)")) {
                    ps.setString(1, lease);
                    ps.setLong(2, tok);
                    ps.setString(3, holder);
                    ps.setLong(4, value);
                    ps.executeUpdate();
                }
                conn.commit();
                ok = true;
            } else {
                conn.rollback();
            }
        } catch (SQLException e) {
            emit(base("write") + ",\"token\":" + tok + ",\"result\":\"error\",\"start\":" + start + ",\"t\":"
                    + System.currentTimeMillis() + ",\"deadline\":" + deadline + "}");
            throw e;
        } finally {
            try {
                conn.setAutoCommit(true);
            } catch (SQLException ignored) {
                // connection gone
            }
        }
        emit(base("write") + ",\"token\":" + tok + ",\"result\":\"" + (ok ? "accepted" : "rejected") + "\",\"start\":"
                + start + ",\"t\":" + System.currentTimeMillis() + ",\"deadline\":" + deadline
                + (ok ? ",\"value\":" + value : "") + "}");
    }

    private void shutdown() {
        stop.set(true);
        // best-effort release on SIGTERM, on a fresh connection (the loop may hold the old one)
        Long t = token;
        if (t != null) {
            try (Connection c = DriverManager.getConnection(opt.get("jdbc-url"));
                    PreparedStatement ps = c.prepareStatement("UPDATE " + schema + ".leases SET holder = NULL,"
                            + " expires_at = clock_timestamp() WHERE name = ? AND holder = ? AND token = ?")) {
                ps.setString(1, lease);
                ps.setString(2, holder);
                ps.setLong(3, t);
                if (ps.executeUpdate() == 1) {
                    emit(base("released") + ",\"token\":" + t + ",\"t\":" + System.currentTimeMillis() + "}");
                }
            } catch (SQLException ignored) {
                // the lease expires on its own
            }
        }
    }

    private static void sleep(long ms) {
        if (ms <= 0) {
            return;
        }
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
