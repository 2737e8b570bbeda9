package dev.pglease.internal.tool;

import dev.pglease.internal.sql.GroupStatements;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The JSON shape of a lease group's status, the same in {@code pglease status --group --json} and the actuator
 * endpoint {@code leases}: ordered maps with lower snake_case keys, times as ISO-8601 UTC, durations in
 * milliseconds ({@code _ms}).
 */
public final class GroupJson {

    private GroupJson() {}

    /** {@code group}, {@code shards}, {@code created_at}, {@code live_members}, {@code held_shards}. */
    public static Map<String, Object> summary(GroupStatements.GroupSummary g) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("group", g.name());
        m.put("shards", g.shards());
        m.put("created_at", iso(g.createdAt()));
        m.put("live_members", g.liveMembers());
        m.put("held_shards", g.heldShards());
        return m;
    }

    /**
     * One object per member: {@code member}, {@code weight}, {@code priority}, {@code joined_at},
     * {@code last_renewal}, {@code live}, {@code remaining_ms} (null unless live), {@code shards_owned},
     * {@code member_role}.
     */
    public static List<Map<String, Object>> members(List<GroupStatements.MemberStatus> members) {
        List<Map<String, Object>> out = new ArrayList<>(members.size());
        for (GroupStatements.MemberStatus s : members) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("member", s.member());
            m.put("weight", s.weight());
            m.put("priority", s.priority());
            m.put("joined_at", iso(s.joinedAt()));
            m.put("last_renewal", iso(s.lastRenewal()));
            m.put("live", s.live());
            m.put("remaining_ms", s.remainingMillis());
            m.put("shards_owned", s.shardsOwned());
            m.put("member_role", s.memberRole());
            out.add(m);
        }
        return out;
    }

    /**
     * One object per shard: {@code shard}, {@code lease}, {@code owner} (null while nobody holds it), {@code token},
     * {@code held}, {@code remaining_ms} (null unless held), {@code owner_is_member}.
     */
    public static List<Map<String, Object>> shards(List<GroupStatements.ShardStatus> shards) {
        List<Map<String, Object>> out = new ArrayList<>(shards.size());
        for (GroupStatements.ShardStatus s : shards) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("shard", s.shard());
            m.put("lease", s.lease());
            m.put("owner", s.owner());
            m.put("token", s.token());
            m.put("held", s.held());
            m.put("remaining_ms", s.remainingMillis());
            m.put("owner_is_member", s.ownerIsMember());
            out.add(m);
        }
        return out;
    }

    private static String iso(OffsetDateTime t) {
        return t == null ? null : t.toInstant().toString();
    }
}
