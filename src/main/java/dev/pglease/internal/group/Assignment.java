package dev.pglease.internal.group;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.SortedSet;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The assignment rule of lease groups: which live member should own each shard. A pure function of the group's
 * shard count, its live members, the current owners (and when each grant began), the shards an operator handed off
 * and the shards whose grant lapsed in a live member's hands, so every member computes the same target from the same
 * read, with no coordinator.
 *
 * <ol>
 *   <li>Members are ordered by priority (higher first), then by when they joined (earlier first), then by id.</li>
 *   <li>Each member's quota is its share of the shards by weight, rounded down; the shards left over (fewer than
 *       the members) go one each to members whose share has a fraction: higher priority first, then the larger
 *       fraction, then the member order (earlier joined first). So a quota is always its exact share rounded down
 *       or up, with equal weights quotas differ by at most one, and quotas depend on the members alone, never on
 *       who owns what (which changes while shards move). A newcomer joins last in the order, so no earlier member's
 *       quota grows; a leaver only lets the others' quotas grow.</li>
 *   <li>A shard an operator handed off (and nobody has taken yet) goes to a live member the handoff allows (not
 *       the member it was taken from; one whose id starts with the handoff's prefix, when it has one): among them,
 *       members with a quota before those without, then one under its quota, then the one that ranks the shard
 *       highest by rendezvous hash. It counts against that member's quota. When no live member is allowed, the
 *       shard is treated as free (step 5). A member whose quota is 0 keeps such a shard only until it has it: then
 *       it gives it up like any shard above its quota.</li>
 *   <li>A member keeps the shards it owns, up to what is left of its quota: the grants that began most recently
 *       first, then those it ranks highest by rendezvous hash of (member, shard). The rest of its shards are its
 *       surplus, given up cooperatively. (Most recent first keeps a shard an operator just moved where it was
 *       moved to: the member that received it gives up another one instead.) Then, with what is still left of its
 *       quota, it keeps the shards whose grant lapsed in its hands (expired, not released), in the same order: grants
 *       that end while their members stay move no shard.</li>
 *   <li>Shards nobody keeps (free ones, those of members that left or expired, surpluses) go, in shard order, each to
 *       the member under its quota that ranks it highest by the same hash.</li>
 * </ol>
 * A join therefore moves only the shards the newcomer's quota takes from members above their new quota, a leave moves
 * only the leaver's shards, an operator's handoff moves the shard handed off and, when its receiver was at its quota,
 * one shard of the receiver back to the member that lost it; and with one shard the highest-priority member gets it:
 * leader election with a preferred leader.
 */
public final class Assignment {

    /** A live member of a group: its id (its holder id), weight, priority and when it joined (database clock). */
    public record Member(String id, int weight, int priority, Instant joinedAt) {
        public Member {
            Objects.requireNonNull(id, "id");
            Objects.requireNonNull(joinedAt, "joinedAt");
            if (weight < 1) {
                throw new IllegalArgumentException("weight must be at least 1, got " + weight);
            }
        }
    }

    /**
     * The owner of a held shard and when its grant began, in microseconds on the database clock ({@code 0} when
     * unknown: then only the rendezvous hash orders what a member keeps).
     */
    public record Holding(String holder, long acquiredMicros) {
        public Holding {
            Objects.requireNonNull(holder, "holder");
        }
    }

    /**
     * A shard an operator handed off that nobody has taken yet: it was taken from {@code from}, and only a member
     * whose id starts with {@code toPrefix} may take it ({@code null}: any member but {@code from}).
     */
    public record Pin(int shard, String from, String toPrefix) {
        /** Whether {@code member} may take the shard. */
        boolean allows(String member) {
            return !member.equals(from) && (toPrefix == null || member.startsWith(toPrefix));
        }
    }

    /** The order of members: priority (higher first), joined (earlier first), id. */
    public static final Comparator<Member> ORDER = Comparator.comparingInt((Member m) -> -m.priority())
            .thenComparing(Member::joinedAt)
            .thenComparing(Member::id);

    private final int shards;
    private final List<Member> members;
    private final int[] quota;
    private final String[] ownerOf;

    private Assignment(int shards, List<Member> members, int[] quota, String[] ownerOf) {
        this.shards = shards;
        this.members = members;
        this.quota = quota;
        this.ownerOf = ownerOf;
    }

    /**
     * The target of a group of {@code shards} shards over {@code live} members, given the current owner of each held
     * shard ({@code owners}: shard number to holder id; holders that are not live members count as no owner), with
     * no handoffs and no grant times (what a member keeps is ordered by the rendezvous hash alone).
     */
    public static Assignment compute(int shards, List<Member> live, Map<Integer, String> owners) {
        Map<Integer, Holding> holdings = new HashMap<>();
        owners.forEach((shard, holder) -> holdings.put(shard, new Holding(holder, 0)));
        return compute(shards, live, holdings, List.of());
    }

    /**
     * The target of a group of {@code shards} shards over {@code live} members, given the current owner of each held
     * shard with the time its grant began ({@code owners}; holders that are not live members count as no owner) and
     * the shards handed off by an operator and not taken yet ({@code handedOff}; a pin of a shard that is held, or
     * out of range, is ignored).
     */
    public static Assignment compute(int shards, List<Member> live, Map<Integer, Holding> owners, List<Pin> handedOff) {
        return compute(shards, live, owners, handedOff, Map.of());
    }

    /**
     * As {@link #compute(int, List, Map, List)}, and given the shards whose grant lapsed in a member's hands
     * ({@code lapsed}: shard number to the holder of the grant that expired without being released, with the time it
     * began; an entry of a shard that is held, handed off or out of range, or of a holder that is not a live member,
     * is ignored).
     */
    public static Assignment compute(
            int shards,
            List<Member> live,
            Map<Integer, Holding> owners,
            List<Pin> handedOff,
            Map<Integer, Holding> lapsed) {
        if (shards < 1) {
            throw new IllegalArgumentException("a group has at least one shard, got " + shards);
        }
        List<Member> ordered = new ArrayList<>(live);
        ordered.sort(ORDER);
        int m = ordered.size();
        String[] target = new String[shards];
        if (m == 0) {
            return new Assignment(shards, List.of(), new int[0], target);
        }
        Map<String, Integer> index = new HashMap<>();
        for (int i = 0; i < m; i++) {
            if (index.put(ordered.get(i).id(), i) != null) {
                throw new IllegalArgumentException("member " + ordered.get(i).id() + " is listed twice");
            }
        }
        List<List<Integer>> owned = new ArrayList<>(m);
        for (int i = 0; i < m; i++) {
            owned.add(new ArrayList<>());
        }
        long[] acquired = new long[shards];
        for (Map.Entry<Integer, Holding> e : new TreeMap<>(owners).entrySet()) {
            int shard = e.getKey();
            Integer i = index.get(e.getValue().holder());
            if (i != null && shard >= 0 && shard < shards) {
                owned.get(i).add(shard);
                acquired[shard] = e.getValue().acquiredMicros();
            }
        }
        int[] quota = quotas(shards, ordered);
        long[] hash = new long[m];
        for (int i = 0; i < m; i++) {
            hash[i] = memberHash(ordered.get(i).id());
        }
        int[] deficit = quota.clone();
        List<Pin> pins = new ArrayList<>(handedOff);
        pins.sort(Comparator.comparingInt(Pin::shard));
        for (Pin pin : pins) {
            int s = pin.shard();
            if (s < 0 || s >= shards || target[s] != null || owners.containsKey(s)) {
                continue;
            }
            int best = -1;
            for (int i = 0; i < m; i++) {
                if (!pin.allows(ordered.get(i).id())) {
                    continue;
                }
                if (best < 0
                        || (quota[i] > 0 && quota[best] == 0)
                        || (quota[i] > 0 == quota[best] > 0 && prefers(deficit, hash, i, best, s))) {
                    best = i;
                }
            }
            if (best >= 0) {
                target[s] = ordered.get(best).id();
                deficit[best]--;
            }
        }
        keep(owned, ordered, hash, acquired, deficit, target);
        List<List<Integer>> lapsedOf = new ArrayList<>(m);
        for (int i = 0; i < m; i++) {
            lapsedOf.add(new ArrayList<>());
        }
        for (Map.Entry<Integer, Holding> e : new TreeMap<>(lapsed).entrySet()) {
            int shard = e.getKey();
            Integer i = index.get(e.getValue().holder());
            if (i != null && shard >= 0 && shard < shards && target[shard] == null && !owners.containsKey(shard)) {
                lapsedOf.get(i).add(shard);
                acquired[shard] = e.getValue().acquiredMicros();
            }
        }
        keep(lapsedOf, ordered, hash, acquired, deficit, target);
        for (int s = 0; s < shards; s++) {
            if (target[s] != null) {
                continue;
            }
            int best = -1;
            for (int i = 0; i < m; i++) {
                if (best < 0 || prefers(deficit, hash, i, best, s)) {
                    best = i;
                }
            }
            target[s] = ordered.get(best).id();
            deficit[best]--;
        }
        return new Assignment(shards, List.copyOf(ordered), quota, target);
    }

    /**
     * Each member keeps of {@code shardsOf} its shards as many as what is left of its quota: the grants that began most
     * recently first, then those it ranks highest by rendezvous hash.
     */
    private static void keep(
            List<List<Integer>> shardsOf,
            List<Member> ordered,
            long[] hash,
            long[] acquired,
            int[] deficit,
            String[] target) {
        for (int i = 0; i < ordered.size(); i++) {
            List<Integer> mine = shardsOf.get(i);
            long h = hash[i];
            mine.sort((x, y) -> {
                int byGrant = Long.compare(acquired[y], acquired[x]);
                if (byGrant != 0) {
                    return byGrant;
                }
                int byScore = Long.compareUnsigned(score(h, y), score(h, x));
                return byScore != 0 ? byScore : Integer.compare(x, y);
            });
            int keep = Math.max(0, Math.min(deficit[i], mine.size()));
            for (int k = 0; k < keep; k++) {
                target[mine.get(k)] = ordered.get(i).id();
            }
            deficit[i] -= keep;
        }
    }

    /**
     * Whether member {@code i} should get shard {@code s} rather than member {@code best}: a member under its quota
     * before one that is not, then the higher rendezvous score.
     */
    private static boolean prefers(int[] deficit, long[] hash, int i, int best, int s) {
        boolean under = deficit[i] > 0;
        boolean bestUnder = deficit[best] > 0;
        if (under != bestUnder) {
            return under;
        }
        return Long.compareUnsigned(score(hash[i], s), score(hash[best], s)) > 0;
    }

    /**
     * Quotas by weight, largest remainder; the extras by priority, remainder, member order. Not by who owns what:
     * ownership changes while shards move, and quotas that followed it would change in the middle of a move.
     */
    private static int[] quotas(int shards, List<Member> ordered) {
        int m = ordered.size();
        long total = 0;
        for (Member member : ordered) {
            total += member.weight();
        }
        int[] quota = new int[m];
        long[] remainder = new long[m];
        long given = 0;
        for (int i = 0; i < m; i++) {
            long exact = (long) shards * ordered.get(i).weight();
            quota[i] = (int) (exact / total);
            remainder[i] = exact % total;
            given += quota[i];
        }
        long extras = shards - given;
        Integer[] byClaim = new Integer[m];
        for (int i = 0; i < m; i++) {
            byClaim[i] = i;
        }
        Arrays.sort(
                byClaim,
                Comparator.comparingInt((Integer i) -> -ordered.get(i).priority())
                        .thenComparing((Integer i) -> -remainder[i])
                        .thenComparingInt(i -> i));
        for (int k = 0; k < m && extras > 0; k++) {
            int i = byClaim[k];
            if (remainder[i] > 0) {
                quota[i]++;
                extras--;
            }
        }
        if (extras != 0) {
            throw new IllegalStateException("quotas do not add up to " + shards + " shards");
        }
        return quota;
    }

    /** Rendezvous score of a shard for a member, compared unsigned: higher means the member prefers it. */
    static long score(long memberHash, int shard) {
        long z = memberHash ^ ((shard + 1L) * 0x9E3779B97F4A7C15L);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** FNV-1a, 64 bits, of the member id's UTF-8 bytes: the same in every process and language. */
    static long memberHash(String id) {
        long h = 0xcbf29ce484222325L;
        for (byte b : id.getBytes(StandardCharsets.UTF_8)) {
            h ^= (b & 0xff);
            h *= 0x100000001b3L;
        }
        return h;
    }

    public int shards() {
        return shards;
    }

    /** The live members in assignment order. */
    public List<Member> members() {
        return members;
    }

    /** The member that should own {@code shard}, or {@code null} when the group has no live member. */
    public String ownerOf(int shard) {
        return ownerOf[shard];
    }

    /** The shards {@code member} should own, in ascending order (empty for a member not in the list). */
    public SortedSet<Integer> shardsOf(String member) {
        SortedSet<Integer> out = new TreeSet<>();
        for (int s = 0; s < shards; s++) {
            if (member.equals(ownerOf[s])) {
                out.add(s);
            }
        }
        return out;
    }

    /** How many shards {@code member} should own; 0 for a member not in the list. */
    public int quotaOf(String member) {
        for (int i = 0; i < members.size(); i++) {
            if (members.get(i).id().equals(member)) {
                return quota[i];
            }
        }
        return 0;
    }

    @Override
    public String toString() {
        StringBuilder out = new StringBuilder("Assignment{");
        for (int i = 0; i < members.size(); i++) {
            out.append(i == 0 ? "" : ", ")
                    .append(members.get(i).id())
                    .append('=')
                    .append(shardsOf(members.get(i).id()));
        }
        return out.append('}').toString();
    }
}
