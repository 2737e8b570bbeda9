package dev.pglease.internal.sql;

import dev.pglease.internal.store.LeaseStore.Held;
import dev.pglease.internal.util.Names;
import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The statements of lease groups ({@code R__10_groups.sql}): join, leave, the renewal of a member's rows with its
 * leases in one statement, and the read of a group's state. Shard k of group g is the lease {@code g/k}, of kind
 * {@code shard}, taken and released with {@link LeaseStatements}.
 */
public final class GroupStatements {

    private final String join;
    private final String leave;
    private final String renew;
    private final String state;

    /** When a member joined and the group's number of shards. */
    public record Joined(Instant joinedAt, int shards) {}

    /** What a renewal renewed: lease names, and the groups whose member row it renewed. */
    public record Renewed(List<String> leases, Set<String> groups) {}

    /** A live member: its id, weight, priority, when it joined and the milliseconds until its row expires. */
    public record MemberRow(String id, int weight, int priority, Instant joinedAt, long remainingMillis) {}

    /**
     * The holder of a shard lease now, its token, the milliseconds its grant has left and when the grant began
     * (database clock).
     */
    public record Owner(String holder, long token, long remainingMillis, Instant acquiredAt) {}

    /**
     * A shard an operator handed off that nobody has taken yet: the member it was taken from, the holder id prefix it
     * was handed to ({@code null}: any other member) and the milliseconds the handoff still steers who may take it.
     */
    public record HandedOff(String from, String toPrefix, long remainingMillis) {}

    /**
     * One read of a group: its number of shards, its live members, the holder of each shard held now, the shards
     * handed off by an operator and not yet taken, and the shards whose grant lapsed (expired, not released) while its
     * holder is still a live member (with that holder, the grant's token and when it began; no time left).
     */
    public record State(
            int shards,
            List<MemberRow> members,
            Map<Integer, Owner> owners,
            Map<Integer, HandedOff> handedOff,
            Map<Integer, Owner> lapsed) {
        public State {
            members = List.copyOf(members);
            owners = Map.copyOf(owners);
            handedOff = Map.copyOf(handedOff);
            lapsed = Map.copyOf(lapsed);
        }
    }

    /**
     * What came before the grant {@code token} of shard lease {@code lease}, from its history: the kind of the event
     * before the grant's own ({@code null} when the grant is the lease's first), the holder that event left (for a
     * grant: its holder) and the milliseconds between the two events (database clock).
     */
    public record Before(
            String lease, long token, String previousKind, String previousHolder, double millisSincePrevious) {

        /** Whether the previous grant was given back (released, handed over, taken by an operator): no expiry. */
        public boolean released() {
            return previousKind != null && !previousKind.equals("acquired") && !previousKind.equals("taken_over");
        }
    }

    /**
     * A member of a group as {@code group_member_status} shows it, on the database clock.
     *
     * @param remainingMillis until its row expires while live, else {@code null}
     * @param shardsOwned     the group's shards it holds now
     */
    public record MemberStatus(
            String member,
            int weight,
            int priority,
            OffsetDateTime joinedAt,
            OffsetDateTime lastRenewal,
            boolean live,
            Long remainingMillis,
            long shardsOwned,
            String memberRole) {}

    /**
     * A shard of a group as {@code group_shard_status} shows it, on the database clock.
     *
     * @param owner           its holder while held, else {@code null}
     * @param token           its lease's token, {@code null} before its first grant
     * @param remainingMillis while held, else {@code null}
     * @param ownerIsMember   whether its holder is a live member of the group
     */
    public record ShardStatus(
            int shard,
            String lease,
            String owner,
            Long token,
            boolean held,
            Long remainingMillis,
            boolean ownerIsMember) {}

    /** A group: its number of shards, when it was created, and its live members and held shards now. */
    public record GroupSummary(String name, int shards, OffsetDateTime createdAt, long liveMembers, long heldShards) {}

    private final String schema;
    private final String before;

    public GroupStatements(String schema) {
        String s = Names.schema(schema);
        this.schema = s;
        this.join = "SELECT joined_at, shards FROM " + s + ".group_join(?, ?, ?, ?, ?, ?)";
        this.leave = "SELECT " + s + ".group_leave(?, ?)";
        this.renew = "SELECT what, name FROM " + s + ".group_renew(?, ?::text[], ?::text[], ?::bigint[], ?)";
        this.state = "SELECT what, member, shard, token, weight, priority, joined_at, remaining_ms, acquired_at, "
                + "handoff_to FROM " + s + ".group_state(?)";
        this.before = "SELECT r.name, r.token, p.kind, p.holder, extract(epoch FROM g.at - p.at) * 1000"
                + " FROM unnest(?::text[], ?::bigint[]) AS r(name, token)"
                + " CROSS JOIN LATERAL (SELECT e.id, e.at FROM " + s + ".lease_events e"
                + "  WHERE e.name = r.name AND e.token = r.token ORDER BY e.id DESC LIMIT 1) g"
                + " LEFT JOIN LATERAL (SELECT e.kind, e.holder, e.at FROM " + s + ".lease_events e"
                + "  WHERE e.name = r.name AND e.id < g.id ORDER BY e.id DESC LIMIT 1) p ON true";
    }

    /** The lease name of shard {@code shard} of group {@code group}. */
    public static String shardLease(String group, int shard) {
        return group + "/" + shard;
    }

    /**
     * What names a member's advisory lock for {@code fast_failover_key} (fast failover): held by the member's lease
     * session, waited for by the member that watches it. It has control characters, so it is no lease's name.
     */
    public static String memberLockName(String group, String member) {
        return "\u0001member\u0001" + group + "\u0001" + member;
    }

    /**
     * {@code group_member_gone}: removes {@code member} from {@code group} if every shard it holds was registered by
     * a lease session that has ended; whether it did.
     */
    public boolean memberGone(Connection c, String group, String member) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT " + schema + ".group_member_gone(?, ?)")) {
            ps.setString(1, group);
            ps.setString(2, member);
            return Rows.bool(ps);
        }
    }

    /** Joins {@code group} as {@code member} (or refreshes the member's row); see {@code group_join}. */
    public Joined join(Connection c, String group, String member, int shards, int weight, int priority, long ttlMillis)
            throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(join)) {
            ps.setString(1, group);
            ps.setString(2, member);
            ps.setInt(3, shards);
            ps.setInt(4, weight);
            ps.setInt(5, priority);
            ps.setLong(6, ttlMillis);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    throw new IllegalStateException("join of group " + Names.quote(group) + " returned no row");
                }
                return new Joined(rs.getTimestamp(1).toInstant(), rs.getInt(2));
            }
        }
    }

    /** Leaves {@code group} now; whether the member was there. */
    public boolean leave(Connection c, String group, String member) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(leave)) {
            ps.setString(1, group);
            ps.setString(2, member);
            return Rows.bool(ps);
        }
    }

    /**
     * Renews the member rows of {@code holder} in {@code groups} and its {@code leases} (all with the same time to
     * live, {@code ttlMillis}) in one statement.
     */
    public Renewed renew(Connection c, String holder, Collection<String> groups, List<Held> leases, long ttlMillis)
            throws SQLException {
        String[] names = new String[leases.size()];
        Long[] tokens = new Long[leases.size()];
        for (int i = 0; i < names.length; i++) {
            Held h = leases.get(i);
            if (h.ttlMillis() != ttlMillis) {
                throw new IllegalArgumentException("a group renewal renews every lease for " + ttlMillis
                        + " ms, but lease " + Names.quote(h.name()) + " asks for " + h.ttlMillis() + " ms");
            }
            names[i] = h.name();
            tokens[i] = h.token();
        }
        Array groupArray = c.createArrayOf("text", groups.toArray(new String[0]));
        Array nameArray = c.createArrayOf("text", names);
        Array tokenArray = c.createArrayOf("bigint", tokens);
        List<String> renewed = new ArrayList<>(names.length);
        Set<String> members = new HashSet<>();
        try (PreparedStatement ps = c.prepareStatement(renew)) {
            ps.setString(1, holder);
            ps.setArray(2, groupArray);
            ps.setArray(3, nameArray);
            ps.setArray(4, tokenArray);
            ps.setLong(5, ttlMillis);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    if ("member".equals(rs.getString(1))) {
                        members.add(rs.getString(2));
                    } else {
                        renewed.add(rs.getString(2));
                    }
                }
            }
        } finally {
            groupArray.free();
            nameArray.free();
            tokenArray.free();
        }
        if (renewed.size() > names.length || members.size() > groups.size()) {
            throw new IllegalStateException("group renewal returned " + renewed.size() + " leases and "
                    + members.size() + " member rows for " + names.length + " leases and " + groups.size()
                    + " groups");
        }
        return new Renewed(renewed, members);
    }

    /**
     * For each grant (lease names and tokens, index by index), what came before it in the lease's history; a grant
     * with no event (not committed, or another lease) is left out. One statement.
     */
    public List<Before> before(Connection c, List<String> leases, List<Long> tokens) throws SQLException {
        Array names = c.createArrayOf("text", leases.toArray(new String[0]));
        Array values = c.createArrayOf("bigint", tokens.toArray(new Long[0]));
        List<Before> out = new ArrayList<>(leases.size());
        try (PreparedStatement ps = c.prepareStatement(before)) {
            ps.setArray(1, names);
            ps.setArray(2, values);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.add(new Before(
                            rs.getString(1), rs.getLong(2), rs.getString(3), rs.getString(4), rs.getDouble(5)));
                }
            }
        } finally {
            names.free();
            values.free();
        }
        return out;
    }

    /** Every group of the schema, by name; or only {@code group} when it is not {@code null}. */
    public List<GroupSummary> groups(Connection c, String group) throws SQLException {
        List<GroupSummary> out = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement("SELECT g.name, g.shards, g.created_at,"
                + " (SELECT count(*) FROM " + schema + ".group_member_status m WHERE m.group_name = g.name AND m.live),"
                + " (SELECT count(*) FROM " + schema + ".group_shard_status h WHERE h.group_name = g.name AND h.held)"
                + " FROM " + schema + ".lease_groups g WHERE ?::text IS NULL OR g.name = ? ORDER BY g.name")) {
            ps.setString(1, group);
            ps.setString(2, group);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.add(new GroupSummary(
                            rs.getString(1),
                            rs.getInt(2),
                            rs.getObject(3, OffsetDateTime.class),
                            rs.getLong(4),
                            rs.getLong(5)));
                }
            }
        }
        return out;
    }

    /** The members of {@code group}, live ones first, each in the order they joined. */
    public List<MemberStatus> members(Connection c, String group) throws SQLException {
        List<MemberStatus> out = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement("SELECT member, weight, priority, joined_at, last_renewal, live,"
                + " (extract(epoch FROM remaining) * 1000)::bigint, shards_owned, member_role FROM " + schema
                + ".group_member_status WHERE group_name = ? ORDER BY live DESC, priority DESC, joined_at, member")) {
            ps.setString(1, group);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    long remaining = rs.getLong(7);
                    Long remainingMillis = rs.wasNull() ? null : remaining;
                    out.add(new MemberStatus(
                            rs.getString(1),
                            rs.getInt(2),
                            rs.getInt(3),
                            rs.getObject(4, OffsetDateTime.class),
                            rs.getObject(5, OffsetDateTime.class),
                            rs.getBoolean(6),
                            remainingMillis,
                            rs.getLong(8),
                            rs.getString(9)));
                }
            }
        }
        return out;
    }

    /** Every shard of {@code group}, in shard order, with its owner now. */
    public List<ShardStatus> shardStatus(Connection c, String group) throws SQLException {
        List<ShardStatus> out = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement("SELECT shard, lease, owner, token, held,"
                + " (extract(epoch FROM remaining) * 1000)::bigint, owner_is_member FROM " + schema
                + ".group_shard_status WHERE group_name = ? ORDER BY shard")) {
            ps.setString(1, group);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    long token = rs.getLong(4);
                    Long tokenOrNull = rs.wasNull() ? null : token;
                    long remaining = rs.getLong(6);
                    Long remainingMillis = rs.wasNull() ? null : remaining;
                    out.add(new ShardStatus(
                            rs.getInt(1),
                            rs.getString(2),
                            rs.getString(3),
                            tokenOrNull,
                            rs.getBoolean(5),
                            remainingMillis,
                            rs.getBoolean(7)));
                }
            }
        }
        return out;
    }

    private static Owner owner(ResultSet rs) throws SQLException {
        return new Owner(
                rs.getString(2),
                rs.getLong(4),
                rs.getLong(8),
                rs.getTimestamp(9).toInstant());
    }

    /** The state of {@code group} now, or {@code null} when no member ever joined it. */
    public State state(Connection c, String group) throws SQLException {
        int shards = -1;
        List<MemberRow> members = new ArrayList<>();
        Map<Integer, Owner> owners = new HashMap<>();
        Map<Integer, HandedOff> handedOff = new HashMap<>();
        Map<Integer, Owner> lapsed = new HashMap<>();
        try (PreparedStatement ps = c.prepareStatement(state)) {
            ps.setString(1, group);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    switch (rs.getString(1)) {
                        case "group" -> shards = rs.getInt(3);
                        case "member" ->
                            members.add(new MemberRow(
                                    rs.getString(2),
                                    rs.getInt(5),
                                    rs.getInt(6),
                                    rs.getTimestamp(7).toInstant(),
                                    rs.getLong(8)));
                        case "shard" -> owners.put(rs.getInt(3), owner(rs));
                        case "handoff" ->
                            handedOff.put(
                                    rs.getInt(3), new HandedOff(rs.getString(2), rs.getString(10), rs.getLong(8)));
                        case "lapsed" -> lapsed.put(rs.getInt(3), owner(rs));
                        default -> {
                            // a kind a later schema added: this version computes the assignment without it, as it
                            // did before that kind existed, rather than failing every read of the group
                        }
                    }
                }
            }
        }
        return shards < 0 ? null : new State(shards, members, owners, handedOff, lapsed);
    }
}
