package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

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
import java.util.TreeSet;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Lease groups with fast failover, in one JVM: when a member's lease session ends, the member that watches it has
 * the group remove it, and the others take its shards over at once (long before its leases expire), each with the
 * next token; the member itself steps down at once, then joins again as a newcomer. What a member may do to another
 * (remove it) needs the other's registered lease sessions to have ended.
 */
@org.junit.jupiter.api.Timeout(120)
class GroupFastFailoverTest {

    /** Long enough that an expiry can not be what moved the shards. */
    private static final Duration LEASE = Duration.ofSeconds(10);

    /**
     * What "at once" is held to: a quarter of the lease (an expiry takes the whole lease). Measured on a 2-core machine
     * under heavy load: a few hundred milliseconds.
     */
    private static final long FAST_BOUND_MILLIS = LEASE.toMillis() / 4;

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
        return member(label, TestDatabase.dataSource());
    }

    private PgLease member(String label, javax.sql.DataSource dataSource) {
        return member(label, dataSource, true);
    }

    private PgLease member(String label, javax.sql.DataSource dataSource, boolean fastFailover) {
        PgLease p = PgLease.create(
                dataSource,
                LeaseConfig.builder()
                        .schema(schema)
                        .holderLabel(label)
                        .leaseDuration(LEASE)
                        .renewDeadline(Duration.ofSeconds(6))
                        .retryPeriod(Duration.ofMillis(500))
                        .fastFailover(fastFailover)
                        .build());
        opened.add(p);
        return p;
    }

    @Test
    void aMemberWhoseLeaseSessionEndsStepsDownAtOnceAndItsShardsAreGrantedAgainLongBeforeTheirLeasesExpire()
            throws Exception {
        String group = "ff-" + System.nanoTime();
        List<LeaseGroup> members = new ArrayList<>();
        List<LeaseGroupTest.Recorder> calls = new ArrayList<>();
        for (String label : List.of("a", "b", "c")) {
            LeaseGroupTest.Recorder r = new LeaseGroupTest.Recorder();
            calls.add(r);
            members.add(member(label).group(group, 12, r));
        }
        await("4 each", () -> members.stream().allMatch(g -> g.ownedShards().size() == 4));
        LeaseGroup victim = members.get(0);
        String victimId = opened.get(0).holderId();
        Set<Integer> orphans = new TreeSet<>(victim.ownedShards());
        Map<Integer, Long> oldTokens = new HashMap<>();
        orphans.forEach(s -> oldTokens.put(s, victim.leadership(s).orElseThrow().token()));

        long start = System.nanoTime();
        int ended = endLeaseSession(group + "/" + orphans.iterator().next());
        assertThat(ended).as("the victim's lease session, terminated").isEqualTo(1);

        LeaseGroupTest.Recorder victimCalls = calls.get(0);
        await(
                "the victim steps down from every grant at once",
                () -> orphans.stream()
                        .allMatch(s -> victimCalls.calls.contains("revoked " + s + " " + oldTokens.get(s))));
        long steppedDown = (System.nanoTime() - start) / 1_000_000;
        await(
                "every one of its shards granted again, with a higher token",
                () -> orphans.stream().allMatch(s -> heldWithTokenAbove(group + "/" + s, oldTokens.get(s))));
        long taken = (System.nanoTime() - start) / 1_000_000;
        System.out.printf(
                "fast failover of a group member's lease session (lease %d s): stepped down after %d ms, its %d shards "
                        + "granted again after %d ms (taken over: %s)%n",
                LEASE.toSeconds(), steppedDown, orphans.size(), taken, takenOverEvents(group));
        assertThat(taken).as("far below the lease duration").isLessThan(FAST_BOUND_MILLIS);
        await(
                "the victim joins again and the group is balanced",
                () -> members.stream().allMatch(g -> g.ownedShards().size() == 4));
        assertThat(memberIds(group)).contains(victimId).hasSize(3);
        calls.forEach(r -> assertThat(r.errors).isEmpty());
    }

    @Test
    void whenAMemberIsCutOffAndItsLeaseSessionEndsTheOthersRemoveItAndTakeItsShardsOverAtOnce() throws Exception {
        String group = "cut-" + System.nanoTime();
        Cuttable cut = new Cuttable(TestDatabase.dataSource());
        List<LeaseGroup> members = new ArrayList<>();
        members.add(member("victim", cut).group(group, 12, new LeaseGroupTest.Recorder()));
        members.add(member("b").group(group, 12, new LeaseGroupTest.Recorder()));
        members.add(member("c").group(group, 12, new LeaseGroupTest.Recorder()));
        await("4 each", () -> members.stream().allMatch(g -> g.ownedShards().size() == 4));
        LeaseGroup victim = members.get(0);
        String victimId = opened.get(0).holderId();
        Set<Integer> orphans = new TreeSet<>(victim.ownedShards());
        java.time.Instant joinedBefore = joinedAt(group, victimId);

        long start = System.nanoTime();
        cut.cut = true; // as a crashed process: it opens no connection and releases nothing
        assertThat(endLeaseSession(group + "/" + orphans.iterator().next())).isEqualTo(1);
        List<LeaseGroup> survivors = members.subList(1, 3);
        await(
                "its shards owned by the others",
                () -> survivors.stream()
                        .flatMap(g -> g.ownedShards().stream())
                        .toList()
                        .containsAll(orphans));
        long taken = (System.nanoTime() - start) / 1_000_000;
        System.out.printf(
                "fast failover of a cut-off group member (lease %d s): its %d shards owned by the others %d ms after "
                        + "its lease session ended%n",
                LEASE.toSeconds(), orphans.size(), taken);
        assertThat(taken).as("far below the lease duration").isLessThan(FAST_BOUND_MILLIS);
        assertThat(takenOverEvents(group))
                .as("taken over while unexpired, each with the next token")
                .hasSize(orphans.size());
        assertThat(memberIds(group)).doesNotContain(victimId);

        cut.cut = false; // it comes back: it joins again as a newcomer
        await(
                "balanced with the victim again",
                () -> members.stream().allMatch(g -> g.ownedShards().size() == 4));
        assertThat(joinedAt(group, victimId)).isAfter(joinedBefore);
    }

    @Test
    void aMemberWhoseSessionsAreAliveIsNotRemovedByAnother() throws Exception {
        String group = "alive-" + System.nanoTime();
        LeaseGroup a = member("a").group(group, 4, new LeaseGroupTest.Recorder());
        LeaseGroup b = member("b").group(group, 4, new LeaseGroupTest.Recorder());
        await("2 each", () -> a.ownedShards().size() == 2 && b.ownedShards().size() == 2);
        String bId = opened.get(1).holderId();
        assertThat(memberGone(group, bId))
                .as("its registered lease sessions are alive")
                .isFalse();
        assertThat(memberIds(group)).contains(bId);
        assertThat(b.ownedShards()).hasSize(2);
    }

    @Test
    void aPlainMemberWhoseDatabaseSessionsEndKeepsItsShardsAndIsNeverRemovedEarly() throws Exception {
        String group = "plain-" + System.nanoTime();
        String application = "pglease-plain-" + System.nanoTime();
        LeaseGroup fast = member("fast").group(group, 4, new LeaseGroupTest.Recorder());
        LeaseGroup plain = member("plain", TestDatabase.dataSource("ApplicationName=" + application), false)
                .group(group, 4, new LeaseGroupTest.Recorder());
        await(
                "2 each",
                () -> fast.ownedShards().size() == 2 && plain.ownedShards().size() == 2);
        String plainId = opened.get(1).holderId();
        Map<Integer, Long> tokens = new HashMap<>();
        plain.ownedShards()
                .forEach(s -> tokens.put(s, plain.leadership(s).orElseThrow().token()));

        assertThat(endSessionsOf(application))
                .as("the plain member's sessions, terminated")
                .isPositive();
        long until =
                System.nanoTime() + Duration.ofMillis(2 * FAST_BOUND_MILLIS).toNanos();
        while (System.nanoTime() - until < 0) {
            tokens.forEach((s, token) -> assertThat(holderAndToken(group + "/" + s))
                    .as("shard %d while the lease is unexpired", s)
                    .isEqualTo(plainId + " " + token));
            Thread.sleep(20);
        }
        assertThat(memberGone(group, plainId))
                .as("a member whose grants were never registered")
                .isFalse();
        assertThat(memberIds(group)).contains(plainId);
        assertThat(takenOverEvents(group)).isEmpty();
    }

    // ---- helpers ----

    /** Terminates every backend of {@code applicationName}; how many. */
    private static int endSessionsOf(String applicationName) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                        + " FROM pg_stat_activity WHERE application_name = ?")) {
            ps.setString(1, applicationName);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }

    private static boolean memberGone(String group, String member) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT " + schema + ".group_member_gone(?, ?)")) {
            ps.setString(1, group);
            ps.setString(2, member);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    private static String holderAndToken(String lease) {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT holder || ' ' || token FROM " + schema
                        + ".leases WHERE name = ? AND expires_at > clock_timestamp()")) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getString(1) : "none";
            }
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A data source that can be cut off: then every new connection fails, as for a process that is gone. */
    private static final class Cuttable extends org.springframework.jdbc.datasource.DelegatingDataSource {
        volatile boolean cut;

        Cuttable(javax.sql.DataSource target) {
            super(target);
        }

        @Override
        public Connection getConnection() throws SQLException {
            if (cut) {
                throw new SQLException("cut off (test)", "08001");
            }
            return super.getConnection();
        }

        @Override
        public Connection getConnection(String username, String password) throws SQLException {
            return getConnection();
        }
    }

    /** Terminates the backend that registered {@code lease}'s grant: the holder's lease session. */
    private static int endLeaseSession(String lease) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT count(*) FILTER (WHERE pg_terminate_backend(s.pid))"
                        + " FROM " + schema + ".fast_failover_sessions s WHERE s.name = ?")) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }

    private static boolean heldWithTokenAbove(String lease, long token) {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement(
                        "SELECT token > ? AND held FROM " + schema + ".lease_status WHERE name = ?")) {
            ps.setLong(1, token);
            ps.setString(2, lease);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() && rs.getBoolean(1);
            }
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    private static List<String> takenOverEvents(String group) throws SQLException {
        List<String> out = new ArrayList<>();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT name FROM " + schema
                        + ".lease_events WHERE name LIKE ? AND kind = 'taken_over' ORDER BY id")) {
            ps.setString(1, group + "/%");
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.add(rs.getString(1));
                }
            }
        }
        return out;
    }

    private static java.time.Instant joinedAt(String group, String member) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement(
                        "SELECT joined_at FROM " + schema + ".group_members WHERE group_name = ? AND member = ?")) {
            ps.setString(1, group);
            ps.setString(2, member);
            try (ResultSet rs = ps.executeQuery()) {
                assertThat(rs.next()).as("member " + member).isTrue();
                return rs.getTimestamp(1).toInstant();
            }
        }
    }

    private static List<String> memberIds(String group) throws SQLException {
        List<String> out = new ArrayList<>();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement(
                        "SELECT member FROM " + schema + ".group_member_status WHERE group_name = ? AND live")) {
            ps.setString(1, group);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.add(rs.getString(1));
                }
            }
        }
        return out;
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - end > 0) {
                throw new AssertionError("timed out waiting for: " + what);
            }
            Thread.sleep(2);
        }
    }
}
