package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Lease groups against a real PostgreSQL, members in one JVM: balance, joins, leaves, cooperative moves, fencing. */
@org.junit.jupiter.api.Timeout(120)
@Tag("core")
class LeaseGroupTest {

    private static String schema;
    private final List<PgLease> opened = new ArrayList<>();

    @BeforeAll
    static void migrate() {
        schema = TestDatabase.freshSchema();
    }

    @AfterEach
    void closeAll() {
        opened.forEach(PgLease::close);
    }

    private PgLease member(String label) {
        PgLease p = PgLease.create(
                TestDatabase.dataSource(),
                LeaseConfig.builder()
                        .schema(schema)
                        .holderLabel(label)
                        .leaseDuration(Duration.ofMillis(1500))
                        .renewDeadline(Duration.ofMillis(1000))
                        .retryPeriod(Duration.ofMillis(250))
                        .build());
        opened.add(p);
        return p;
    }

    /** Records every call, and checks that calls of one shard alternate assigned / revoked. */
    static final class Recorder implements GroupListener {
        final List<String> calls = new CopyOnWriteArrayList<>();
        final Map<Integer, Leadership> held = new ConcurrentHashMap<>();
        final List<String> errors = new CopyOnWriteArrayList<>();
        /** Validity of each grant when its onRevoked began. */
        final Map<Long, Boolean> validAtRevoke = new ConcurrentHashMap<>();
        /** System.nanoTime() when each onRevoked returned, by shard. */
        final Map<Integer, Long> revokeReturned = new ConcurrentHashMap<>();

        volatile long revokeDelayMillis;

        @Override
        public void onAssigned(int shard, Leadership leadership) {
            calls.add("assigned " + shard + " " + leadership.token());
            if (held.put(shard, leadership) != null) {
                errors.add("shard " + shard + " assigned twice without a revoke");
            }
        }

        @Override
        public void onRevoked(int shard, Leadership leadership) {
            validAtRevoke.put(leadership.token(), leadership.isValid());
            calls.add("revoked " + shard + " " + leadership.token());
            if (held.remove(shard) != leadership) {
                errors.add("shard " + shard + " revoked without being assigned that grant");
            }
            if (revokeDelayMillis > 0) {
                try {
                    Thread.sleep(revokeDelayMillis);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            revokeReturned.put(shard, System.nanoTime());
        }
    }

    @Test
    void threeEqualMembersOwnFourOfTwelveShardsEachAndEveryShardOnce() throws Exception {
        String group = "balance-" + System.nanoTime();
        List<LeaseGroup> members = new ArrayList<>();
        List<Recorder> recorders = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            Recorder r = new Recorder();
            recorders.add(r);
            members.add(member("m" + i).group(group, 12, r));
        }
        await(
                "4 shards each",
                () -> members.stream().allMatch(g -> g.ownedShards().size() == 4));
        assertDisjointAndComplete(members, 12);
        assertThat(shardOwnersInTheDatabase(group)).hasSize(12);
        recorders.forEach(r -> assertThat(r.errors).isEmpty());
    }

    @Test
    void twoHundredFiftySixShardsSettleOverFourMembersAndEachRenewsThemInOneStatementPerRetryPeriod() throws Exception {
        String group = "many-" + System.nanoTime();
        List<LeaseGroup> members = new ArrayList<>();
        java.util.concurrent.atomic.AtomicLong renewals = new java.util.concurrent.atomic.AtomicLong();
        long start = System.nanoTime();
        for (int i = 0; i < 4; i++) {
            PgLease p = PgLease.create(
                    countingRenewals(TestDatabase.dataSource(), renewals),
                    LeaseConfig.builder()
                            .schema(schema)
                            .holderLabel("many" + i)
                            .leaseDuration(Duration.ofMillis(1500))
                            .renewDeadline(Duration.ofMillis(1000))
                            .retryPeriod(Duration.ofMillis(250))
                            .build());
            opened.add(p);
            members.add(p.group(group, 256, new Recorder()));
        }
        await(
                "64 shards each",
                () -> members.stream().allMatch(g -> g.ownedShards().size() == 64));
        long settled = (System.nanoTime() - start) / 1_000_000;
        assertDisjointAndComplete(members, 256);
        long before = renewals.get();
        Thread.sleep(2_500);
        double perMemberPerRetryPeriod = (renewals.get() - before) / 4.0 / (2_500 / 250);
        System.out.printf(
                "256 shards over 4 members: settled in %d ms; %.2f renewal statements per member per retry period%n",
                settled, perMemberPerRetryPeriod);
        assertThat(perMemberPerRetryPeriod)
                .as("renewal statements (member row and every shard) per member per retry period")
                .isBetween(0.5, 1.2);
    }

    /** A data source whose connections count the renewal statements they prepare. */
    private static javax.sql.DataSource countingRenewals(
            javax.sql.DataSource ds, java.util.concurrent.atomic.AtomicLong renewals) {
        return counting(ds, "(group_renew|renew_all)", renewals);
    }

    /** A data source whose connections count the statements they prepare that call a function matching {@code fn}. */
    private static javax.sql.DataSource counting(
            javax.sql.DataSource ds, String fn, java.util.concurrent.atomic.AtomicLong count) {
        return (javax.sql.DataSource) java.lang.reflect.Proxy.newProxyInstance(
                LeaseGroupTest.class.getClassLoader(), new Class<?>[] {javax.sql.DataSource.class}, (p, m, args) -> {
                    Object result = invoke(ds, m, args);
                    if (!(result instanceof Connection c)) {
                        return result;
                    }
                    return java.lang.reflect.Proxy.newProxyInstance(
                            LeaseGroupTest.class.getClassLoader(),
                            new Class<?>[] {Connection.class},
                            (cp, cm, cargs) -> {
                                if (cm.getName().equals("prepareStatement")
                                        && String.valueOf(cargs[0]).matches("(?s).*\\." + fn + "\\(.*")) {
                                    count.incrementAndGet();
                                }
                                return invoke(c, cm, cargs);
                            });
                });
    }

    private static Object invoke(Object target, java.lang.reflect.Method m, Object[] args) throws Throwable {
        try {
            return m.invoke(target, args);
        } catch (java.lang.reflect.InvocationTargetException e) {
            throw e.getCause();
        }
    }

    @Test
    void aStormOfForgedNotificationsNamingTheGroupCostsAtMostOneReadPerNoticeIntervalAndNoRenewal() throws Exception {
        String group = "storm-" + System.nanoTime();
        java.util.concurrent.atomic.AtomicLong reads = new java.util.concurrent.atomic.AtomicLong();
        java.util.concurrent.atomic.AtomicLong renewals = new java.util.concurrent.atomic.AtomicLong();
        PgLease p = PgLease.create(
                counting(
                        counting(TestDatabase.dataSource(), "group_state", reads), "(group_renew|renew_all)", renewals),
                LeaseConfig.builder()
                        .schema(schema)
                        .holderLabel("storm")
                        .leaseDuration(Duration.ofMillis(1500))
                        .renewDeadline(Duration.ofMillis(1000))
                        .retryPeriod(Duration.ofMillis(250))
                        .build());
        opened.add(p);
        LeaseGroup g = p.group(group, 4, new Recorder());
        await("all 4 shards", () -> g.ownedShards().size() == 4);
        Thread.sleep(500);
        long readsBefore = reads.get();
        long renewalsBefore = renewals.get();
        long start = System.nanoTime();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement notify = c.prepareStatement("SELECT pg_notify(?, ?)")) {
            while (System.nanoTime() - start < 2_000_000_000L) {
                notify.setString(1, schema + ".leases");
                notify.setString(2, "{\"name\": \"" + group + "\", \"kind\": \"member_joined\"}");
                notify.execute();
            }
        }
        long elapsedMillis = (System.nanoTime() - start) / 1_000_000;
        Thread.sleep(100);
        long stormReads = reads.get() - readsBefore;
        long stormRenewals = renewals.get() - renewalsBefore;
        System.out.printf(
                "notification storm of %d ms: %d group reads, %d renewals%n", elapsedMillis, stormReads, stormRenewals);
        // notice interval: retryPeriod / 10 = 25 ms
        assertThat(stormReads).as("group reads during the storm").isBetween(1L, elapsedMillis / 25 + 5);
        assertThat(stormRenewals)
                .as("renewals during the storm: one per retry period, as without it")
                .isLessThanOrEqualTo(elapsedMillis / 250 + 2);
        assertThat(g.ownedShards()).hasSize(4);
    }

    @Test
    void aJoinMovesOnlyTheShardsTheNewcomerNeedsAndOnlyToIt() throws Exception {
        String group = "join-" + System.nanoTime();
        LeaseGroup a = member("a").group(group, 12, new Recorder());
        LeaseGroup b = member("b").group(group, 12, new Recorder());
        await(
                "6 shards each",
                () -> a.ownedShards().size() == 6 && b.ownedShards().size() == 6);
        Map<Integer, String> before = shardOwnersInTheDatabase(group);
        LeaseGroup c = member("c").group(group, 12, new Recorder());
        await(
                "4 shards each",
                () -> a.ownedShards().size() == 4
                        && b.ownedShards().size() == 4
                        && c.ownedShards().size() == 4);
        Map<Integer, String> after = shardOwnersInTheDatabase(group);
        String newcomer = c.leadership(c.ownedShards().first()).orElseThrow().holder();
        int moved = 0;
        for (int s = 0; s < 12; s++) {
            if (!after.get(s).equals(before.get(s))) {
                moved++;
                assertThat(after.get(s))
                        .as("shard %d moved to an old member", s)
                        .isEqualTo(newcomer);
            }
        }
        assertThat(moved).isEqualTo(4);
    }

    @Test
    void aLeavingMemberHandsItsShardsOverCooperativelyAndOnlyItsShardsMove() throws Exception {
        String group = "leave-" + System.nanoTime();
        Recorder leaverCalls = new Recorder();
        leaverCalls.revokeDelayMillis = 100; // work in flight that drains
        Recorder stayerCalls = new Recorder();
        Recorder otherCalls = new Recorder();
        LeaseGroup leaver = member("leaver").group(group, 9, leaverCalls);
        LeaseGroup stayer = member("stayer").group(group, 9, stayerCalls);
        LeaseGroup other = member("other").group(group, 9, otherCalls);
        await(
                "3 shards each",
                () -> leaver.ownedShards().size() == 3
                        && stayer.ownedShards().size() == 3
                        && other.ownedShards().size() == 3);
        SortedSet<Integer> leavers = leaver.ownedShards();
        Map<Integer, String> before = shardOwnersInTheDatabase(group);
        Map<Integer, Long> oldTokens = new HashMap<>();
        leavers.forEach(s -> oldTokens.put(s, leaver.leadership(s).orElseThrow().token()));
        leaver.close();
        await("the leaver's shards owned by the others", () -> {
            Map<Integer, String> now = shardOwnersInTheDatabase(group);
            return leavers.stream()
                    .allMatch(s -> now.get(s) != null && !now.get(s).equals(before.get(s)));
        });
        for (int s : leavers) {
            assertThat(leaverCalls.validAtRevoke.get(oldTokens.get(s)))
                    .as("the grant of shard %d was still valid during its cooperative onRevoked", s)
                    .isTrue();
        }
        Map<Integer, String> after = shardOwnersInTheDatabase(group);
        for (int s = 0; s < 9; s++) {
            if (!leavers.contains(s)) {
                assertThat(after.get(s))
                        .as("shard %d of a member that stayed", s)
                        .isEqualTo(before.get(s));
            }
        }
        await(
                "the others own 9 shards",
                () -> stayer.ownedShards().size() + other.ownedShards().size() == 9);
        assertThat(Math.abs(stayer.ownedShards().size() - other.ownedShards().size()))
                .isLessThanOrEqualTo(1);
        assertThat(leaverCalls.errors).isEmpty();
    }

    @Test
    void theNewOwnerIsAssignedOnlyAfterTheGiversOnRevokedReturned() throws Exception {
        String group = "order-" + System.nanoTime();
        Recorder giverCalls = new Recorder();
        giverCalls.revokeDelayMillis = 300;
        LeaseGroup giver = member("giver").group(group, 2, giverCalls);
        await("the giver owns both shards", () -> giver.ownedShards().size() == 2);
        Map<Integer, Long> takerAssignedAt = new ConcurrentHashMap<>();
        LeaseGroup taker = member("taker").group(group, 2, new GroupListener() {
            @Override
            public void onAssigned(int shard, Leadership leadership) {
                takerAssignedAt.put(shard, System.nanoTime());
            }

            @Override
            public void onRevoked(int shard, Leadership leadership) {}
        });
        await(
                "one shard each",
                () -> giver.ownedShards().size() == 1 && taker.ownedShards().size() == 1);
        int moved = taker.ownedShards().first();
        assertThat(giverCalls.revokeReturned).containsKey(moved);
        assertThat(takerAssignedAt.get(moved))
                .as("the taker is assigned after the giver's onRevoked returned")
                .isGreaterThan(giverCalls.revokeReturned.get(moved));
    }

    @Test
    void withOneShardTheHighestPriorityMemberLeadsAndTakesOverFromALowerOne() throws Exception {
        String group = "preferred-" + System.nanoTime();
        LeaseGroup low = member("low").group(group, 1, GroupConfig.defaults(), new Recorder());
        await("the only member leads", () -> low.ownedShards().equals(Set.of(0)));
        LeaseGroup high = member("high").group(group, 1, GroupConfig.defaults().withPriority(10), new Recorder());
        await("the preferred member leads", () -> high.ownedShards().equals(Set.of(0)));
        assertThat(low.ownedShards()).isEmpty();
        LeaseGroup equal = member("equal").group(group, 1, GroupConfig.defaults(), new Recorder());
        Thread.sleep(1000);
        assertThat(high.ownedShards())
                .as("a member of lower priority does not take it")
                .isEqualTo(Set.of(0));
        assertThat(equal.ownedShards()).isEmpty();
    }

    @Test
    void aWeightTwoMemberOwnsTwiceTheShardsOfAWeightOneMember() throws Exception {
        String group = "weights-" + System.nanoTime();
        LeaseGroup light = member("light").group(group, 12, new Recorder());
        LeaseGroup heavy = member("heavy").group(group, 12, GroupConfig.weight(2), new Recorder());
        await(
                "4 and 8 shards",
                () -> light.ownedShards().size() == 4 && heavy.ownedShards().size() == 8);
    }

    @Test
    void eachShardIsALeaseOfKindShardWhoseOldTokenIsRefusedOnceItMoved() throws Exception {
        String group = "fenced-" + System.nanoTime();
        PgLease first = member("first");
        LeaseGroup a = first.group(group, 2, new Recorder());
        await("both shards", () -> a.ownedShards().size() == 2);
        assertThat(a.leaseName(1)).isEqualTo(group + "/1");
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement(
                        "SELECT count(*) FROM " + schema + ".leases WHERE kind = 'shard' AND name LIKE ?")) {
            ps.setString(1, group + "/%");
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                assertThat(rs.getInt(1)).isEqualTo(2);
            }
        }
        TestDatabase.execute("CREATE TABLE IF NOT EXISTS " + schema + ".shard_writes (shard int, token bigint)");
        Map<Integer, Leadership> before =
                Map.of(0, a.leadership(0).orElseThrow(), 1, a.leadership(1).orElseThrow());
        for (int s = 0; s < 2; s++) {
            Leadership l = before.get(s);
            int shard = s;
            int written = first.inFencedTransaction(l, c -> insert(c, shard, l.token()));
            assertThat(written).isEqualTo(1);
        }
        LeaseGroup b = member("second").group(group, 2, new Recorder());
        await(
                "one shard each",
                () -> a.ownedShards().size() == 1 && b.ownedShards().size() == 1);
        int moved = b.ownedShards().first();
        Leadership stale = before.get(moved);
        Leadership taken = b.leadership(moved).orElseThrow();
        assertThat(taken.token()).isGreaterThan(stale.token());
        assertThat(stale.isValid()).isFalse();
        assertThatThrownBy(() -> first.inFencedTransaction(stale, c -> insert(c, moved, stale.token())))
                .isInstanceOf(LeaseException.class);
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT " + schema + ".fence(?, ?)")) {
            c.setAutoCommit(false);
            ps.setString(1, stale.leaseName());
            ps.setLong(2, stale.token());
            assertThatThrownBy(ps::executeQuery)
                    .isInstanceOf(SQLException.class)
                    .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isEqualTo("PL001"));
            c.rollback();
        }
        int kept = 1 - moved;
        Leadership stillMine = a.leadership(kept).orElseThrow();
        assertThat(stillMine.token()).isEqualTo(before.get(kept).token());
        int written = first.inFencedTransaction(stillMine, c -> insert(c, kept, stillMine.token()));
        assertThat(written).isEqualTo(1);
    }

    @Test
    void aMemberWithAnotherNumberOfShardsIsRefusedWithBothNumbers() throws Exception {
        String group = "sizes-" + System.nanoTime();
        member("twelve").group(group, 12, new Recorder());
        PgLease other = member("eight");
        assertThatThrownBy(() -> other.group(group, 8, new Recorder()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("12 shards")
                .hasMessageContaining("with 8");
    }

    @Test
    void badArgumentsAreRefusedWithTheValue() {
        PgLease p = member("args");
        assertThatThrownBy(() -> p.group("g", 0, new Recorder()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("got 0");
        assertThatThrownBy(() -> p.group("x".repeat(191), 1, new Recorder()))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("190");
        assertThatThrownBy(() -> GroupConfig.weight(0)).hasMessageContaining("got 0");
        assertThatThrownBy(() -> GroupConfig.defaults().withPriority(1001)).hasMessageContaining("got 1001");
    }

    // ---- helpers ----

    private static int insert(Connection c, int shard, long token) throws SQLException {
        try (PreparedStatement ps =
                c.prepareStatement("INSERT INTO " + schema + ".shard_writes (shard, token) VALUES (?, ?)")) {
            ps.setInt(1, shard);
            ps.setLong(2, token);
            return ps.executeUpdate();
        }
    }

    private static void assertDisjointAndComplete(List<LeaseGroup> members, int shards) {
        Set<Integer> all = new TreeSet<>();
        int total = 0;
        for (LeaseGroup g : members) {
            all.addAll(g.ownedShards());
            total += g.ownedShards().size();
        }
        assertThat(total).isEqualTo(shards);
        assertThat(all).hasSize(shards);
    }

    static Map<Integer, String> shardOwnersInTheDatabase(String group) {
        Map<Integer, String> out = new HashMap<>();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT shard, owner FROM " + schema
                        + ".group_shard_status WHERE group_name = ? AND owner IS NOT NULL")) {
            ps.setString(1, group);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.put(rs.getInt(1), rs.getString(2));
                }
            }
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
        return out;
    }

    static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + Duration.ofSeconds(15).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > end) {
                throw new AssertionError("not within 15 s: " + what);
            }
            Thread.sleep(20);
        }
    }
}
