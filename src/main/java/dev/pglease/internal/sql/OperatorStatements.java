package dev.pglease.internal.sql;

import dev.pglease.internal.util.Names;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;

/**
 * What operators read and do, shared by the command-line tool, the Spring actuator endpoint and the demo: the
 * status of every lease, the history of one, and the schema's operator functions {@code force_release} and
 * {@code handoff}. Reads need the observer role; the functions need the operator role.
 */
public final class OperatorStatements {

    private final String schema;

    public OperatorStatements(String schema) {
        this.schema = Names.schema(schema);
    }

    /**
     * One lease as {@code lease_status} shows it, on the database clock.
     *
     * @param remainingMillis     time left while held, else {@code null}
     * @param lastEvent           the kind of the lease's latest event, {@code null} when it has none
     * @param lastChangeAgoMillis how long ago the last change of holder was, {@code null} when unknown
     */
    public record LeaseStatus(
            String name,
            String holder,
            long token,
            String holderRole,
            boolean held,
            Long remainingMillis,
            OffsetDateTime expiresAt,
            String lastEvent,
            OffsetDateTime lastChange,
            Long lastChangeAgoMillis) {}

    /** One change of holder, from {@code lease_events}. */
    public record LeaseEvent(
            long id,
            String name,
            OffsetDateTime at,
            String kind,
            long token,
            String holder,
            String previousHolder,
            String changedBy) {}

    /**
     * The outcome of an operator function on a lease: its holder and token before, and its token after;
     * {@code token} is {@code null} when the lease was not held and nothing was done.
     */
    public record Change(String previousHolder, long previousToken, Long token) {

        /** Whether the function took the lease from its holder. */
        public boolean done() {
            return token != null;
        }
    }

    /** The status of the leases named (every lease when {@code names} is empty), by name. */
    public List<LeaseStatus> status(Connection c, List<String> names) throws SQLException {
        String sql = "SELECT s.*, "
                + "(extract(epoch FROM s.remaining) * 1000)::bigint AS remaining_ms, "
                + "(extract(epoch FROM clock_timestamp() - s.last_change) * 1000)::bigint AS ago_ms, "
                + "(SELECT e.kind FROM " + schema + ".lease_events e WHERE e.name = s.name ORDER BY e.id DESC LIMIT 1) "
                + "AS last_event FROM " + schema + ".lease_status s "
                + (names.isEmpty() ? "" : "WHERE s.name = ANY (?) ") + "ORDER BY s.name";
        List<LeaseStatus> rows = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            if (!names.isEmpty()) {
                ps.setArray(1, c.createArrayOf("text", names.toArray()));
            }
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    long remaining = rs.getLong("remaining_ms");
                    Long remainingMillis = rs.wasNull() ? null : remaining;
                    long ago = rs.getLong("ago_ms");
                    Long agoMillis = rs.wasNull() ? null : ago;
                    rows.add(new LeaseStatus(
                            rs.getString("name"),
                            rs.getString("holder"),
                            rs.getLong("token"),
                            rs.getString("holder_role"),
                            rs.getBoolean("held"),
                            remainingMillis,
                            rs.getObject("expires_at", OffsetDateTime.class),
                            rs.getString("last_event"),
                            rs.getObject("last_change", OffsetDateTime.class),
                            agoMillis));
                }
            }
        }
        return rows;
    }

    /** The latest {@code limit} events of lease {@code name}, oldest first; empty when there is no such lease. */
    public List<LeaseEvent> history(Connection c, String name, int limit) throws SQLException {
        List<LeaseEvent> events = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT * FROM " + schema + ".lease_events WHERE name = ? ORDER BY id DESC LIMIT ?")) {
            ps.setString(1, name);
            ps.setInt(2, limit);
            readEvents(ps, events);
        }
        Collections.reverse(events);
        return events;
    }

    /**
     * The events of every lease with an id above {@code afterId}, by id, at most {@code limit}: what a follower of
     * the history reads when a notification wakes it (ids grow with every event, but a transaction may commit after
     * one that took a higher id).
     */
    public List<LeaseEvent> eventsAfter(Connection c, long afterId, int limit) throws SQLException {
        List<LeaseEvent> events = new ArrayList<>();
        try (PreparedStatement ps =
                c.prepareStatement("SELECT * FROM " + schema + ".lease_events WHERE id > ? ORDER BY id LIMIT ?")) {
            ps.setLong(1, afterId);
            ps.setInt(2, limit);
            readEvents(ps, events);
        }
        return events;
    }

    /** The highest event id so far, 0 when there is none. */
    public long lastEventId(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT coalesce(max(id), 0) FROM " + schema + ".lease_events");
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getLong(1);
        }
    }

    private static void readEvents(PreparedStatement ps, List<LeaseEvent> events) throws SQLException {
        try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
                events.add(new LeaseEvent(
                        rs.getLong("id"),
                        rs.getString("name"),
                        rs.getObject("at", OffsetDateTime.class),
                        rs.getString("kind"),
                        rs.getLong("token"),
                        rs.getString("holder"),
                        rs.getString("previous_holder"),
                        rs.getString("changed_by")));
            }
        }
    }

    /**
     * {@code <schema>.force_release(name)}: the token moves on, so the holder's fenced writes are refused from now on.
     * Empty when there is no such lease.
     */
    public Optional<Change> forceRelease(Connection c, String name) throws SQLException {
        return change(c, "force_release", name);
    }

    /**
     * {@code <schema>.handoff(name, toPrefix)}: the holder loses the lease now and may not take it back for one
     * lease duration; with {@code toPrefix}, only a holder id starting with it may take it in that time. Empty when
     * there is no such lease.
     */
    public Optional<Change> handoff(Connection c, String name, String toPrefix) throws SQLException {
        return change(c, "handoff", name, toPrefix);
    }

    /**
     * {@code <schema>.group_handoff(group, shard, toPrefix)}: shard {@code shard} of lease group {@code group} moves to
     * another live member (one whose id starts with {@code toPrefix}) at once; its holder loses it now. Empty when
     * the shard's lease was never granted.
     *
     * @throws SQLException SQLSTATE 22023 when the group or shard does not exist or no live member may take it (the
     *                      message says which), 42501 without the operator role
     */
    public Optional<Change> groupHandoff(Connection c, String group, int shard, String toPrefix) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("WITH before AS (SELECT holder, token FROM " + schema
                + ".leases WHERE name = ?) SELECT b.holder, b.token, " + schema + ".group_handoff(?, ?, ?)"
                + " FROM (SELECT 1) AS one LEFT JOIN before b ON true")) {
            ps.setString(1, group + "/" + shard);
            ps.setString(2, group);
            ps.setInt(3, shard);
            ps.setString(4, toPrefix);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                String holder = rs.getString(1);
                long token = rs.getLong(2);
                if (rs.wasNull()) {
                    rs.getLong(3); // the function ran (and checked the group and shard): the lease has no row yet
                    return Optional.empty();
                }
                long after = rs.getLong(3);
                return Optional.of(new Change(holder, token, rs.wasNull() ? null : after));
            }
        }
    }

    /**
     * One statement: reads the holder and token as they were, and calls the operator function. It needs only what
     * the operator role has (SELECT on the leases, EXECUTE on the function): no row lock, which would need UPDATE.
     */
    private Optional<Change> change(Connection c, String function, String name, String... moreArguments)
            throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("WITH before AS (SELECT holder, token FROM " + schema
                + ".leases WHERE name = ?) SELECT holder, token, " + schema + "." + function + "(?"
                + ", ?".repeat(moreArguments.length) + ") FROM before")) {
            ps.setString(1, name);
            ps.setString(2, name);
            for (int i = 0; i < moreArguments.length; i++) {
                ps.setString(3 + i, moreArguments[i]);
            }
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return Optional.empty();
                }
                String holder = rs.getString(1);
                long token = rs.getLong(2);
                long after = rs.getLong(3);
                return Optional.of(new Change(holder, token, rs.wasNull() ? null : after));
            }
        }
    }
}
