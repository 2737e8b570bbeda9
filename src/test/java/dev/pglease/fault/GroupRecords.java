package dev.pglease.fault;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * What a group run records besides the operations: the group as the kit's monitor read it from the database
 * (live members and the holder of each shard) whenever it changed, and the moments the kit found it settled.
 */
public final class GroupRecords {
    private GroupRecords() {}

    /**
     * A live member of the group: a holder id and when it joined (a member that re-joins after its row expired is a
     * new member).
     */
    public record Member(String holder, long joinedAtMicros) implements Comparable<Member> {
        @Override
        public int compareTo(Member o) {
            int c = holder.compareTo(o.holder);
            return c != 0 ? c : Long.compare(joinedAtMicros, o.joinedAtMicros);
        }

        @Override
        public String toString() {
            return holder + "@" + DbTime.format(joinedAtMicros);
        }
    }

    /** The holder of a shard's lease and its token, while the lease is held (unexpired) on the database. */
    public record Owner(String holder, long token) {}

    /**
     * The group at one read: its live members and the owner of each shard held (a shard missing from
     * {@code owners} is free or expired).
     *
     * @param atMs when it was read (kit clock)
     */
    public record Snapshot(long atMs, Set<Member> members, Map<Integer, Owner> owners) {
        public Snapshot {
            members = Set.copyOf(new TreeSet<>(members));
            owners = Map.copyOf(owners);
        }

        /** Whether the members and each shard's owner are the same as in {@code o} (times aside). */
        public boolean sameAs(Snapshot o) {
            return o != null && members.equals(o.members) && owners.equals(o.owners);
        }

        /** Number of shards each live member owns (members without shards count 0). */
        public Map<String, Integer> counts() {
            Map<String, Integer> m = new TreeMap<>();
            for (Member x : members) {
                m.put(x.holder(), 0);
            }
            for (Owner o : owners.values()) {
                m.computeIfPresent(o.holder(), (k, v) -> v + 1);
            }
            return m;
        }

        /** Shards held by no live member (free, expired, or held by a holder that is not a live member). */
        public List<Integer> unowned(int shards) {
            Set<String> live = new TreeSet<>();
            members.forEach(x -> live.add(x.holder()));
            List<Integer> out = new ArrayList<>();
            for (int s = 0; s < shards; s++) {
                Owner o = owners.get(s);
                if (o == null || !live.contains(o.holder())) {
                    out.add(s);
                }
            }
            return out;
        }

        public String render(int shards) {
            return "members " + members + ", shards per member " + counts() + ", unowned " + unowned(shards);
        }
    }

    /**
     * The kit's wait for the group to settle after a fault: settled when every running node was a live member, no
     * fault was active, and neither the members nor any shard's owner changed for the quiet time.
     *
     * @param atMs      when the wait ended (kit clock)
     * @param faultIndex the fault it followed (-1 at the start of the run)
     * @param settled   whether the group settled within the kit's time limit
     * @param state     the group when it settled, or as it was last read
     * @param why       what kept it from settling (null when it settled)
     */
    public record Settle(long atMs, long faultIndex, boolean settled, Snapshot state, String why) {}
}
