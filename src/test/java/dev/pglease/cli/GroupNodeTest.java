package dev.pglease.cli;

import static dev.pglease.cli.NodeProcess.event;
import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.TestDatabase;
import dev.pglease.testkit.Percentiles;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The node command's group mode as separate processes, at the 1 s / 600 ms / 200 ms timings: the event contract per
 * shard, balance, joins, SIGTERM and kill -9, and, from every node's own reports, that no shard was owned by two
 * members at once by their own deadlines and that each shard's counter accepted writes in token order.
 */
@Timeout(600)
class GroupNodeTest {

    private static final int SHARDS = 64;
    private static final long LEASE_MILLIS = 1000;
    private static final long RETRY_MILLIS = 200;

    private static String schema;
    private final List<NodeProcess> nodes = new ArrayList<>();

    @BeforeAll
    static void migrate() {
        schema = TestDatabase.freshSchema();
    }

    @AfterEach
    void stop() {
        nodes.forEach(NodeProcess::close);
    }

    private NodeProcess member(String group, String label) throws Exception {
        return member(group, label, LEASE_MILLIS + "ms", "600ms", false);
    }

    private NodeProcess member(String group, String label, String lease, String renewDeadline, boolean fastFailover)
            throws Exception {
        List<String> args = new ArrayList<>(List.of(
                "--jdbc-url",
                TestDatabase.jdbcUrl(),
                "--schema",
                schema,
                "--group",
                group,
                "--shards",
                String.valueOf(SHARDS),
                "--lease-duration",
                lease,
                "--renew-deadline",
                renewDeadline,
                "--retry-period",
                RETRY_MILLIS + "ms",
                "--work",
                "fenced-counter",
                "--work-interval",
                "100ms",
                "--holder-label",
                label,
                "--trace"));
        if (fastFailover) {
            args.add("--fast-failover");
        }
        NodeProcess p = NodeProcess.start(args.toArray(String[]::new));
        nodes.add(p);
        return p;
    }

    @Test
    void eachShardIsReportedWithItsLeaseGroupAndNumberAndWritesAreFencedPerShard() throws Exception {
        String group = "contract-" + System.nanoTime();
        NodeProcess a = member(group, "a");
        Map<String, Object> started = a.await(event("started"), 30_000);
        assertThat(started).containsEntry("group", group).containsKeys("holder", "pid", "t");
        Map<String, Object> elected = a.await(event("elected"), 10_000);
        int shard = ((Number) elected.get("shard")).intValue();
        assertThat(elected)
                .containsEntry("group", group)
                .containsEntry("lease", group + "/" + shard)
                .containsKeys("holder", "token", "deadline", "t");
        Map<String, Object> write = a.await(e -> "write".equals(e.get("event")), 10_000);
        assertThat(write).containsEntry("group", group).containsKeys("shard", "lease", "token", "start", "value");
        assertThat(write.get("lease")).isEqualTo(group + "/" + write.get("shard"));
        assertThat(write.get("result")).isEqualTo("accepted");
        await("the only member owns every shard", () -> owned(a).size() == SHARDS);
    }

    @Test
    void membersBalanceWithinOneAJoinSettlesQuicklyAndMovesOnlyWhatTheNewcomerNeeds() throws Exception {
        String group = "balance-" + System.nanoTime();
        NodeProcess a = member(group, "a");
        NodeProcess b = member(group, "b");
        await("32 shards each", () -> owned(a).size() == 32 && owned(b).size() == 32);
        Set<Integer> aBefore = owned(a);
        Set<Integer> bBefore = owned(b);
        long joinAt = System.currentTimeMillis();
        NodeProcess c = member(group, "c");
        c.await(event("started"), 30_000);
        long startedAt = System.currentTimeMillis();
        await("21 or 22 shards each", () -> balanced(List.of(a, b, c)));
        long settled = System.currentTimeMillis() - startedAt;
        Set<Integer> moved = owned(c);
        assertThat(moved.size()).isLessThanOrEqualTo((SHARDS + 2) / 3);
        for (int s : moved) {
            assertThat(aBefore.contains(s) || bBefore.contains(s)).isTrue();
        }
        assertThat(releasedSince(a, joinAt) + releasedSince(b, joinAt))
                .as("only the shards the newcomer took were released")
                .isEqualTo(moved.size());
        System.out.printf(
                "group join: balanced %d ms after the newcomer started (%d ms after it was launched), %d shards moved%n",
                settled, System.currentTimeMillis() - joinAt, moved.size());
        assertThat(settled).as("a join is balanced within 3 s").isLessThan(3_000);
        assertSafe(group, List.of(a, b, c));
    }

    @Test
    void sigtermHandsEveryShardOverCooperativelyAndTheOthersOwnThemAtOnce() throws Exception {
        String group = "sigterm-" + System.nanoTime();
        List<NodeProcess> live = new ArrayList<>();
        for (String label : List.of("a", "b", "c")) {
            live.add(member(group, label));
        }
        await("balanced", () -> balanced(live));
        List<Long> handOvers = new ArrayList<>();
        List<NodeProcess> all = new ArrayList<>(live);
        for (int round = 0; round < 7; round++) {
            NodeProcess leaving = live.remove(0);
            Set<Integer> itsShards = owned(leaving);
            long sent = System.currentTimeMillis();
            assertThat(leaving.terminate(10_000)).as("exit code after SIGTERM").isZero();
            assertThat(releasedCount(leaving)).isGreaterThanOrEqualTo(itsShards.size());
            await(
                    "the leaver's shards owned by the others",
                    () -> ownedByAny(live).containsAll(itsShards));
            long last = 0;
            for (int s : itsShards) {
                last = Math.max(last, electedAfter(live, s, sent));
            }
            handOvers.add(last - sent);
            NodeProcess replacement = member(group, "r" + round);
            live.add(replacement);
            all.add(replacement);
            await("balanced again", () -> balanced(live));
        }
        System.out.printf(
                "group SIGTERM: all of the leaver's shards owned elsewhere after %s ms (p50 %d, max %d)%n",
                handOvers, Percentiles.of(handOvers, 50), Percentiles.of(handOvers, 100));
        assertThat(Percentiles.of(handOvers, 50))
                .as("p50 of SIGTERM to the last of the leaver's shards owned elsewhere")
                .isLessThan(500);
        assertSafe(group, all);
    }

    @Test
    void theShardsOfAKilledMemberAreOwnedElsewhereWithinLeaseDurationPlusRetryPeriodPlusHalfASecond() throws Exception {
        String group = "kill-" + System.nanoTime();
        List<NodeProcess> live = new ArrayList<>();
        for (String label : List.of("a", "b", "c")) {
            live.add(member(group, label));
        }
        await("balanced", () -> balanced(live));
        List<NodeProcess> all = new ArrayList<>(live);
        List<Long> takeovers = new ArrayList<>();
        for (int round = 0; round < 3; round++) {
            NodeProcess victim = live.remove(0);
            Set<Integer> itsShards = owned(victim);
            long killed = System.currentTimeMillis();
            victim.close(); // kill -9
            await(
                    "the victim's shards owned by the others",
                    () -> ownedByAny(live).containsAll(itsShards));
            long last = 0;
            for (int s : itsShards) {
                last = Math.max(last, electedAfter(live, s, killed));
            }
            takeovers.add(last - killed);
            NodeProcess replacement = member(group, "r" + round);
            live.add(replacement);
            all.add(replacement);
            await("balanced again", () -> balanced(live));
        }
        System.out.printf("group kill -9: all of the victim's shards owned elsewhere after %s ms%n", takeovers);
        assertThat(Percentiles.of(takeovers, 100))
                .as("kill -9 to the last orphan owned elsewhere")
                .isLessThanOrEqualTo(LEASE_MILLIS + RETRY_MILLIS + 500);
        assertSafe(group, all);
    }

    @Test
    void withFastFailoverTheShardsOfAKilledMemberAreOwnedElsewhereLongBeforeItsLeasesExpire() throws Exception {
        String group = "ff-kill-" + System.nanoTime();
        long lease = 10_000;
        List<NodeProcess> live = new ArrayList<>();
        for (String label : List.of("a", "b", "c")) {
            live.add(member(group, label, lease + "ms", "6s", true));
        }
        await("balanced", () -> balanced(live));
        List<NodeProcess> all = new ArrayList<>(live);
        NodeProcess victim = live.remove(0);
        Set<Integer> itsShards = owned(victim);
        long killed = System.currentTimeMillis();
        victim.close(); // kill -9: its lease session ends with the process
        await("the victim's shards owned by the others", () -> ownedByAny(live).containsAll(itsShards));
        long last = 0;
        for (int s : itsShards) {
            last = Math.max(last, electedAfter(live, s, killed));
        }
        System.out.printf(
                "group kill -9 with --fast-failover (lease %d ms): all of the victim's %d shards owned elsewhere after "
                        + "%d ms%n",
                lease, itsShards.size(), last - killed);
        assertThat(last - killed)
                .as("kill -9 to the last orphan owned elsewhere")
                .isLessThan(lease / 4);
        assertSafe(group, all, Map.of(victim, killed));
    }

    // ---- what the nodes reported ----

    /** Shards a node owns now by its own events: elected and not yet released or revoked. */
    private static Set<Integer> owned(NodeProcess p) {
        Map<Integer, Boolean> held = new TreeMap<>();
        for (Map<String, Object> e : p.events()) {
            Object shard = e.get("shard");
            if (shard == null) {
                continue;
            }
            switch (String.valueOf(e.get("event"))) {
                case "elected" -> held.put(((Number) shard).intValue(), true);
                case "released", "revoked" -> held.put(((Number) shard).intValue(), false);
                default -> {}
            }
        }
        Set<Integer> out = new TreeSet<>();
        held.forEach((s, h) -> {
            if (h) {
                out.add(s);
            }
        });
        return out;
    }

    private static Set<Integer> ownedByAny(List<NodeProcess> nodes) {
        Set<Integer> out = new TreeSet<>();
        nodes.forEach(n -> out.addAll(owned(n)));
        return out;
    }

    private static boolean balanced(List<NodeProcess> nodes) {
        int total = 0;
        int min = Integer.MAX_VALUE;
        int max = 0;
        for (NodeProcess n : nodes) {
            int k = owned(n).size();
            total += k;
            min = Math.min(min, k);
            max = Math.max(max, k);
        }
        return total == SHARDS && max - min <= 1;
    }

    private static long releasedSince(NodeProcess p, long since) {
        return p.events().stream()
                .filter(e -> "released".equals(e.get("event")) || "revoked".equals(e.get("event")))
                .filter(e -> ((Number) e.get("t")).longValue() >= since)
                .count();
    }

    private static long releasedCount(NodeProcess p) {
        return p.events().stream()
                .filter(e -> "released".equals(e.get("event")))
                .count();
    }

    /** The time of the first elected event of {@code shard} at or after {@code since}, among {@code nodes}. */
    private static long electedAfter(List<NodeProcess> nodes, int shard, long since) {
        long first = Long.MAX_VALUE;
        for (NodeProcess n : nodes) {
            for (Map<String, Object> e : n.events()) {
                if ("elected".equals(e.get("event"))
                        && e.get("shard") != null
                        && ((Number) e.get("shard")).intValue() == shard) {
                    long t = ((Number) e.get("t")).longValue();
                    if (t >= since) {
                        first = Math.min(first, t);
                    }
                }
            }
        }
        return first;
    }

    /**
     * From the nodes' own reports: each grant of a shard is owned from its elected event until its released or
     * revoked event, and never past the latest deadline its node reported for it (elected, renewals); grants of one
     * shard by different holders never overlap. And each shard's counter accepted writes in token order.
     */
    private static void assertSafe(String group, List<NodeProcess> nodes) throws Exception {
        assertSafe(group, nodes, Map.of());
    }

    /**
     * As {@link #assertSafe(String, List)}, where a node killed at {@code killedAt} (kill -9, with fast failover) owns
     * nothing after that time: it is gone, and its session with it; its writes are still checked by the counter.
     */
    private static void assertSafe(String group, List<NodeProcess> nodes, Map<NodeProcess, Long> killedAt)
            throws Exception {
        record Grant(String holder, long token, long start, long end) {}
        Map<Integer, List<Grant>> byShard = new HashMap<>();
        for (NodeProcess n : nodes) {
            Map<String, long[]> open = new HashMap<>(); // lease + token -> {start, deadline, shard}
            for (Map<String, Object> e : n.events()) {
                String kind = String.valueOf(e.get("event"));
                Object lease = e.get("lease");
                if (lease == null || !String.valueOf(lease).startsWith(group + "/")) {
                    continue;
                }
                int shard = Integer.parseInt(String.valueOf(lease).substring(group.length() + 1));
                long token = e.get("token") == null ? 0 : ((Number) e.get("token")).longValue();
                String key = lease + " " + token;
                long t = ((Number) e.get("t")).longValue();
                long deadline = e.get("deadline") == null ? 0 : ((Number) e.get("deadline")).longValue();
                switch (kind) {
                    case "elected" -> open.put(key, new long[] {t, deadline, shard});
                    case "renew" -> {
                        long[] g = open.get(key);
                        if (g != null && "ok".equals(e.get("result"))) {
                            g[1] = Math.max(g[1], deadline);
                        }
                    }
                    case "released", "revoked" -> {
                        long[] g = open.remove(key);
                        if (g != null) {
                            byShard.computeIfAbsent(shard, k -> new ArrayList<>())
                                    .add(new Grant(String.valueOf(e.get("holder")), token, g[0], Math.min(t, g[1])));
                        }
                    }
                    default -> {}
                }
            }
            String holder = n.events().isEmpty()
                    ? "?"
                    : String.valueOf(n.events().get(0).get("holder"));
            open.forEach((key, g) -> byShard.computeIfAbsent((int) g[2], k -> new ArrayList<>())
                    .add(new Grant(
                            holder,
                            Long.parseLong(key.substring(key.lastIndexOf(' ') + 1)),
                            g[0],
                            n.process().isAlive()
                                    ? Long.MAX_VALUE
                                    : Math.min(g[1], killedAt.getOrDefault(n, Long.MAX_VALUE)))));
        }
        List<String> overlaps = new ArrayList<>();
        byShard.forEach((shard, grants) -> {
            grants.sort((x, y) -> Long.compare(x.start(), y.start()));
            for (int i = 0; i < grants.size(); i++) {
                for (int j = i + 1; j < grants.size(); j++) {
                    Grant x = grants.get(i);
                    Grant y = grants.get(j);
                    if (!x.holder().equals(y.holder()) && y.start() < x.end()) {
                        overlaps.add("shard " + shard + ": " + x + " and " + y);
                    }
                }
            }
        });
        assertThat(overlaps)
                .as("shards owned by two members at once, by their own deadlines")
                .isEmpty();
        assertThat(byShard).as("grants reported").isNotEmpty();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM (SELECT token, lag(token) OVER "
                        + "(PARTITION BY name ORDER BY id) AS before FROM " + schema + ".fenced_counter_log "
                        + "WHERE name LIKE ?) w WHERE token < before")) {
            ps.setString(1, group + "/%");
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                assertThat(rs.getLong(1))
                        .as("writes accepted with a lower token than an earlier write")
                        .isZero();
            }
        }
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + 30_000_000_000L;
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("not within 30 s: " + what);
            }
            Thread.sleep(10);
        }
    }
}
