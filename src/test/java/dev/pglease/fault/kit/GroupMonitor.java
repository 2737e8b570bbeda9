package dev.pglease.fault.kit;

import dev.pglease.fault.DbRecords;
import dev.pglease.fault.GroupRecords;
import dev.pglease.fault.History;
import dev.pglease.fault.Op;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The kit's observer of a lease group: reads every shard's lease row and the live members every few milliseconds,
 * in one statement. A shard's read becomes a READ op of that shard's lease when its holder, token or held state
 * changed since the last one; the group (members and owners) becomes a {@link GroupRecords.Snapshot} whenever it
 * changed. At the end it loads the group's lease events, the accept log and the audit of every shard's row.
 */
public final class GroupMonitor implements AutoCloseable {

    /** A shard's lease row at the last read. */
    public record Row(String holder, long token, boolean held, long expiresMs) {}

    private final History history;
    private final String schema;
    private final String group;
    private final long periodMs;
    private volatile String jdbcUrl;
    private volatile boolean running = true;
    private volatile boolean suspended;
    private volatile Map<Integer, Row> rows = Map.of();
    private volatile Map<String, Long> memberExpiries = Map.of();
    private volatile GroupRecords.Snapshot last;
    private volatile long lastOkMs;
    private final Map<Integer, String> lastRecorded = new HashMap<>();
    private final Thread thread;

    public GroupMonitor(History history, String jdbcUrl, String schema, String group, long periodMs) {
        this.history = history;
        this.jdbcUrl = jdbcUrl;
        this.schema = schema;
        this.group = group;
        this.periodMs = periodMs;
        thread = new Thread(this::loop, "fault-group-monitor");
        thread.setDaemon(true);
        thread.start();
    }

    public void jdbcUrl(String url) {
        this.jdbcUrl = url;
    }

    /** Stops (or resumes) the periodic reads. */
    public void suspend(boolean on) {
        suspended = on;
    }

    /** Each shard's row at the last read (shards never taken are absent). */
    public Map<Integer, Row> rows() {
        return rows;
    }

    /** The holder ids of the live members at the last read, with their rows' expiry (epoch ms, database clock). */
    public Map<String, Long> memberExpiries() {
        return memberExpiries;
    }

    /** The group at the last read (null before the first). */
    public GroupRecords.Snapshot snapshot() {
        return last;
    }

    /** The shards {@code holder} holds (unexpired) at the last read. */
    public Set<Integer> shardsOf(String holder) {
        Set<Integer> out = new HashSet<>();
        if (holder != null) {
            rows.forEach((shard, r) -> {
                if (r.held() && holder.equals(r.holder())) {
                    out.add(shard);
                }
            });
        }
        return out;
    }

    public long lastOkMs() {
        return lastOkMs;
    }

    private void loop() {
        Connection c = null;
        String connectedTo = null;
        while (running) {
            try {
                String url = jdbcUrl;
                if (c == null || !url.equals(connectedTo)) {
                    closeQuietly(c);
                    c = DriverManager.getConnection(url);
                    connectedTo = url;
                }
                if (!suspended) {
                    readOnce(c);
                    long now = System.currentTimeMillis();
                    if (now - lastLockSampleMs >= LOCK_SAMPLE_MS) {
                        lastLockSampleMs = now;
                        recordLockWaits(c);
                    }
                }
            } catch (SQLException e) {
                closeQuietly(c);
                c = null;
            }
            PgServer.sleep(periodMs);
        }
        closeQuietly(c);
    }

    private synchronized void readOnce(Connection c) throws SQLException {
        long invoke = System.currentTimeMillis();
        try (PreparedStatement ps = c.prepareStatement("SELECT 's', l.name, l.holder, l.token, l.acquired_at,"
                + " l.expires_at, l.holder IS NOT NULL AND l.expires_at > clock_timestamp() FROM " + schema
                + ".leases l WHERE l.name LIKE ? UNION ALL SELECT 'm', m.member, NULL, NULL, m.joined_at,"
                + " m.expires_at, true FROM " + schema + ".group_members m WHERE m.group_name = ?"
                + " AND m.expires_at > clock_timestamp()")) {
            ps.setString(1, group.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%");
            ps.setString(2, group);
            try (ResultSet rs = ps.executeQuery()) {
                long complete = System.currentTimeMillis();
                Map<Integer, Row> now = new HashMap<>();
                Map<String, Long> expiries = new HashMap<>();
                Set<GroupRecords.Member> members = new HashSet<>();
                Map<Integer, GroupRecords.Owner> owners = new HashMap<>();
                while (rs.next()) {
                    String name = rs.getString(2);
                    java.sql.Timestamp from = rs.getTimestamp(5);
                    java.sql.Timestamp to = rs.getTimestamp(6);
                    if ("m".equals(rs.getString(1))) {
                        members.add(new GroupRecords.Member(name, Monitor.micros(from)));
                        expiries.put(name, to.getTime());
                        continue;
                    }
                    int shard;
                    try {
                        shard = Integer.parseInt(name.substring(group.length() + 1));
                    } catch (NumberFormatException e) {
                        continue;
                    }
                    String h = rs.getString(3);
                    long token = rs.getLong(4);
                    boolean held = rs.getBoolean(7);
                    now.put(shard, new Row(h, token, held, to == null ? 0 : to.getTime()));
                    if (held) {
                        owners.put(shard, new GroupRecords.Owner(h, token));
                    }
                    String state = h + " " + token + " " + held;
                    if (!state.equals(lastRecorded.put(shard, state))) {
                        history.add(new Op(
                                0,
                                "monitor",
                                h,
                                Op.Kind.READ,
                                Op.Outcome.OK,
                                token,
                                invoke,
                                complete,
                                null,
                                null,
                                from == null ? null : Monitor.micros(from),
                                to == null ? null : Monitor.micros(to),
                                held ? "held" : "free",
                                name));
                    }
                }
                rows = Map.copyOf(now);
                memberExpiries = Map.copyOf(expiries);
                GroupRecords.Snapshot s = new GroupRecords.Snapshot(complete, members, owners);
                if (!s.sameAs(last)) {
                    history.addSnapshot(s);
                }
                last = s;
                lastOkMs = complete;
            }
        }
    }

    private static final long LOCK_SAMPLE_MS = 100;
    private long lastLockSampleMs;
    private Set<String> waitsSeen = Set.of();

    /**
     * Records every session that has waited for a lock for more than {@value #LOCK_SAMPLE_MS} ms, with the sessions
     * it waits for (their client, state and statement), once per wait: what holds a shard's row when a member's
     * acquire times out.
     */
    private void recordLockWaits(Connection c) throws SQLException {
        Set<String> seen = new HashSet<>();
        try (PreparedStatement ps = c.prepareStatement("SELECT w.pid, b.pid, w.application_name,"
                        + " (extract(epoch FROM clock_timestamp() - w.state_change) * 1000)::bigint, left(w.query, 160),"
                        + " b.application_name, b.state, coalesce(b.wait_event_type || '/' || b.wait_event, '-'),"
                        + " (extract(epoch FROM clock_timestamp() - b.state_change) * 1000)::bigint, left(b.query, 160)"
                        + " FROM pg_stat_activity w CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS k(pid)"
                        + " JOIN pg_stat_activity b ON b.pid = k.pid"
                        + " WHERE w.wait_event_type = 'Lock' AND w.state_change < clock_timestamp() - interval '"
                        + LOCK_SAMPLE_MS + " ms'");
                ResultSet rs = ps.executeQuery()) {
            long at = System.currentTimeMillis();
            while (rs.next()) {
                String key = rs.getInt(1) + ">" + rs.getInt(2);
                seen.add(key);
                if (waitsSeen.contains(key)) {
                    continue;
                }
                history.add(new Op(
                        0,
                        "monitor",
                        null,
                        Op.Kind.NOTE,
                        Op.Outcome.OK,
                        null,
                        at,
                        at,
                        null,
                        null,
                        null,
                        null,
                        "lock wait: " + rs.getString(3) + " (pid " + rs.getInt(1) + ") waited " + rs.getLong(4)
                                + " ms in [" + rs.getString(5) + "] for " + rs.getString(6) + " (pid "
                                + rs.getInt(2) + ", " + rs.getString(7) + " " + rs.getLong(9) + " ms, "
                                + rs.getString(8) + ") after [" + rs.getString(10) + "]",
                        null));
            }
        }
        waitsSeen = seen;
    }

    /** One final read (through {@code url}), recorded like any other. */
    public void finalRead(String url) {
        try (Connection c = DriverManager.getConnection(url)) {
            readOnce(c);
        } catch (SQLException e) {
            throw new IllegalStateException("final read failed", e);
        }
    }

    /** Loads the group's lease events, the whole accept log and every version of every shard's row. */
    public void loadDatabaseRecords(String url) {
        String like = group.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%";
        try (Connection c = DriverManager.getConnection(url)) {
            List<DbRecords.LeaseEvent> events = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement("SELECT id, name, token, holder, previous_holder,"
                    + " kind::text, at FROM " + schema + ".lease_events WHERE name LIKE ? ORDER BY id")) {
                ps.setString(1, like);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        events.add(new DbRecords.LeaseEvent(
                                rs.getLong(1),
                                rs.getString(2),
                                rs.getLong(3),
                                rs.getString(4),
                                rs.getString(5),
                                rs.getString(6),
                                Monitor.micros(rs.getTimestamp(7))));
                    }
                }
            }
            history.setLeaseEvents(events);
            boolean commitTimes;
            try (Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery("SELECT current_setting('track_commit_timestamp')::bool")) {
                rs.next();
                commitTimes = rs.getBoolean(1);
            }
            List<DbRecords.Accept> log = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement("SELECT id, name, token, holder, value, at, "
                    + (commitTimes ? "pg_xact_commit_timestamp(xmin)" : "NULL::timestamptz") + " FROM " + schema
                    + ".fenced_counter_log ORDER BY id")) {
                ps.setFetchSize(10_000);
                c.setAutoCommit(false);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        java.sql.Timestamp committed = rs.getTimestamp(7);
                        log.add(new DbRecords.Accept(
                                rs.getLong(1),
                                rs.getString(2).intern(),
                                rs.getLong(3),
                                rs.getString(4).intern(),
                                rs.getLong(5),
                                Monitor.micros(rs.getTimestamp(6)),
                                committed == null ? null : Monitor.micros(committed)));
                    }
                }
                c.commit();
            }
            history.setAccepts(log);
            List<DbRecords.LeaseVersion> versions = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement("SELECT id, token, holder, expires_at, at, name FROM "
                    + schema + ".kit_lease_audit WHERE name LIKE ? ORDER BY id")) {
                ps.setFetchSize(10_000);
                ps.setString(1, like);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        String h = rs.getString(3);
                        versions.add(new DbRecords.LeaseVersion(
                                rs.getLong(1),
                                rs.getLong(2),
                                h == null ? null : h.intern(),
                                Monitor.micros(rs.getTimestamp(4)),
                                Monitor.micros(rs.getTimestamp(5)),
                                rs.getString(6).intern()));
                    }
                }
                c.commit();
            }
            history.setLeaseVersions(versions);
        } catch (SQLException e) {
            throw new IllegalStateException("cannot read the database records", e);
        }
    }

    private static void closeQuietly(Connection c) {
        if (c != null) {
            try {
                c.close();
            } catch (SQLException ignored) {
                // closing
            }
        }
    }

    @Override
    public void close() {
        running = false;
        try {
            thread.join(15_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
