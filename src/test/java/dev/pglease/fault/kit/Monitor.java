package dev.pglease.fault.kit;

import dev.pglease.fault.DbRecords;
import dev.pglease.fault.History;
import dev.pglease.fault.Op;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;

/**
 * The kit's own observer: reads the lease row every few milliseconds (a READ op per answer), and at the end loads
 * the lease events and the resource's accept log into the history.
 */
public final class Monitor implements AutoCloseable {
    private final History history;
    private final String schema;
    private final String lease;
    private final long periodMs;
    private volatile String jdbcUrl;
    private volatile boolean running = true;
    private volatile String holder;
    private volatile Long token;
    private volatile boolean held;
    private volatile long expiresMs;
    private volatile long lastOkMs;
    private final Thread thread;

    public Monitor(History history, String jdbcUrl, String schema, String lease, long periodMs) {
        this.history = history;
        this.jdbcUrl = jdbcUrl;
        this.schema = schema;
        this.lease = lease;
        this.periodMs = periodMs;
        thread = new Thread(this::loop, "fault-monitor");
        thread.setDaemon(true);
        thread.start();
    }

    private volatile boolean suspended;

    /** Stops (or resumes) the periodic reads, so that a lease row's state can go unobserved. */
    public void suspend(boolean on) {
        suspended = on;
    }

    public void jdbcUrl(String url) {
        this.jdbcUrl = url;
    }

    /** Holder of the lease at the last successful read, if it was held (not expired on the DB clock). */
    public String heldBy() {
        return held ? holder : null;
    }

    public Long token() {
        return token;
    }

    /** expires_at of the lease row at the last successful read, epoch ms on the database clock (0 if none). */
    public long expiresMs() {
        return expiresMs;
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
                }
            } catch (SQLException e) {
                closeQuietly(c);
                c = null;
            }
            PgServer.sleep(periodMs);
        }
        closeQuietly(c);
    }

    private void readOnce(Connection c) throws SQLException {
        long invoke = System.currentTimeMillis();
        try (PreparedStatement ps = c.prepareStatement("SELECT holder, token, acquired_at, expires_at,"
                + " expires_at > clock_timestamp() FROM " + schema + ".leases WHERE name = ?")) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                long complete = System.currentTimeMillis();
                if (rs.next()) {
                    String h = rs.getString(1);
                    long t = rs.getLong(2);
                    var acq = rs.getTimestamp(3);
                    var exp = rs.getTimestamp(4);
                    holder = h;
                    token = t;
                    held = h != null && rs.getBoolean(5);
                    expiresMs = exp == null ? 0 : exp.getTime();
                    history.add(new Op(
                            0,
                            "monitor",
                            h,
                            Op.Kind.READ,
                            Op.Outcome.OK,
                            t,
                            invoke,
                            complete,
                            null,
                            null,
                            acq == null ? null : micros(acq),
                            exp == null ? null : micros(exp),
                            held ? "held" : "free"));
                }
                lastOkMs = complete;
            }
        }
    }

    static long micros(java.sql.Timestamp ts) {
        return Math.floorDiv(ts.getTime(), 1000) * 1_000_000 + ts.getNanos() / 1000;
    }

    /** One final read of the lease row (through {@code url}), recorded like any other. */
    public void finalRead(String url) {
        try (Connection c = DriverManager.getConnection(url)) {
            readOnce(c);
        } catch (SQLException e) {
            throw new IllegalStateException("final read failed", e);
        }
    }

    /** Loads lease_events (for this lease) and the whole fenced_counter_log into the history. */
    public void loadDatabaseRecords(String url) {
        try (Connection c = DriverManager.getConnection(url)) {
            List<DbRecords.LeaseEvent> events = new ArrayList<>();
            try (PreparedStatement ps =
                    c.prepareStatement("SELECT id, name, token, holder, previous_holder, kind::text," + " at FROM "
                            + schema + ".lease_events WHERE name = ? ORDER BY id")) {
                ps.setString(1, lease);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        events.add(new DbRecords.LeaseEvent(
                                rs.getLong(1),
                                rs.getString(2),
                                rs.getLong(3),
                                rs.getString(4),
                                rs.getString(5),
                                rs.getString(6),
                                micros(rs.getTimestamp(7))));
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
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        java.sql.Timestamp committed = rs.getTimestamp(7);
                        log.add(new DbRecords.Accept(
                                rs.getLong(1),
                                rs.getString(2),
                                rs.getLong(3),
                                rs.getString(4),
                                rs.getLong(5),
                                micros(rs.getTimestamp(6)),
                                committed == null ? null : micros(committed)));
                    }
                }
            }
            history.setAccepts(log);
            List<DbRecords.LeaseVersion> versions = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement("SELECT id, token, holder, expires_at, at FROM " + schema
                    + ".kit_lease_audit WHERE name = ? ORDER BY id")) {
                ps.setString(1, lease);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        versions.add(new DbRecords.LeaseVersion(
                                rs.getLong(1),
                                rs.getLong(2),
                                rs.getString(3),
                                micros(rs.getTimestamp(4)),
                                micros(rs.getTimestamp(5))));
                    }
                }
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
