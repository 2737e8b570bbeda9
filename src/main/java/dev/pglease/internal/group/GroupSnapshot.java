package dev.pglease.internal.group;

import java.util.List;
import java.util.Map;

/**
 * One read of a group ({@code <schema>.group_state}): its number of shards, its live members and the holder of each
 * shard held now, with the milliseconds each has left on the database clock.
 */
public record GroupSnapshot(int shards, List<Assignment.Member> members, Map<Integer, Owner> owners) {

    /** The holder of a shard lease now, its token and how long its grant has left. */
    public record Owner(String holder, long token, long remainingMillis) {}

    public GroupSnapshot {
        members = List.copyOf(members);
        owners = Map.copyOf(owners);
    }

    /** Shard number to holder id, for {@link Assignment#compute}. */
    public Map<Integer, String> holders() {
        Map<Integer, String> out = new java.util.HashMap<>();
        owners.forEach((shard, owner) -> out.put(shard, owner.holder()));
        return out;
    }
}
