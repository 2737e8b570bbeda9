package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.pglease.security.HostileSchema;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import javax.sql.DataSource;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * An operator moves one shard of a lease group ({@code group_handoff}, or the plain {@code handoff} of the shard's
 * lease): the holder's grant is fenced off at once, the shard is owned by another member moments later, and the
 * group stays balanced (the receiver gives one of its other shards back). Members log in as candidates, the
 * operator as a member of the operator role, in a schema migrated by a non-superuser owner.
 */
@org.junit.jupiter.api.Timeout(120)
class GroupHandoffTest {

    private static HostileSchema h;
    private final List<PgLease> opened = new ArrayList<>();
    private final List<HikariDataSource> pools = new ArrayList<>();

    @BeforeAll
    static void setUp() {
        h = HostileSchema.create();
    }

    @AfterEach
    void closeAll() {
        opened.forEach(PgLease::close);
        pools.forEach(HikariDataSource::close);
    }

    /** A member with a connection pool, as applications run (a read of the group does not wait for a login). */
    private PgLease member(String label) {
        HikariConfig pool = new HikariConfig();
        pool.setJdbcUrl(h.url(h.candA));
        pool.setMaximumPoolSize(4);
        pool.setMinimumIdle(2);
        HikariDataSource ds = new HikariDataSource(pool);
        pools.add(ds);
        PgLease p = PgLease.create(
                ds,
                LeaseConfig.builder()
                        .schema(h.schema)
                        .holderLabel(label)
                        .leaseDuration(Duration.ofMillis(1500))
                        .renewDeadline(Duration.ofMillis(1000))
                        .retryPeriod(Duration.ofMillis(250))
                        .build());
        opened.add(p);
        return p;
    }

    private record Member(PgLease pglease, LeaseGroup group, LeaseGroupTest.Recorder calls) {}

    private List<Member> balanced(String group, int shards, String... labels) throws InterruptedException {
        List<Member> members = new ArrayList<>();
        for (String label : labels) {
            PgLease p = member(label);
            LeaseGroupTest.Recorder r = new LeaseGroupTest.Recorder();
            members.add(new Member(p, p.group(group, shards, r), r));
        }
        int share = shards / labels.length;
        await(
                "balanced",
                () -> members.stream().allMatch(m -> m.group().ownedShards().size() == share));
        return members;
    }

    @Test
    void anOperatorsHandoffMovesTheShardToTheNamedMemberAtOnceFencesTheOldOwnerAndKeepsTheGroupBalanced()
            throws Exception {
        String group = "handoff-" + System.nanoTime();
        List<Member> members = balanced(group, 12, "a", "b", "c");
        Member from = members.get(0);
        Member to = members.get(1);
        int shard = from.group().ownedShards().first();
        Leadership old = from.group().leadership(shard).orElseThrow();
        Map<Integer, String> before = owners(group);

        long token;
        long start;
        try (Connection operator = h.as(h.operator).getConnection()) {
            start = System.nanoTime();
            token = groupHandoff(operator, group, shard, to.pglease().holderId());
        }
        long handedOffMillis = (System.nanoTime() - start) / 1_000_000;

        assertThat(token).isGreaterThan(old.token());
        assertThatThrownBy(() -> fence(h.as(h.candA), old))
                .as("the old owner's fenced write, the moment the handoff returned")
                .isInstanceOf(SQLException.class)
                .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isEqualTo("PL001"));
        assertThatThrownBy(() -> from.pglease().inFencedTransaction(old, c -> 1))
                .as("and through the library")
                .isInstanceOf(LeaseException.class);
        await("the receiver owns it", () -> to.group().ownedShards().contains(shard));
        long ownedMillis = (System.nanoTime() - start) / 1_000_000;
        double unownedMillis = unownedMillis(group + "/" + shard, token);
        System.out.printf(
                "group_handoff of shard %d: returned after %d ms, the receiver told %d ms after the call; "
                        + "without an owner for %.1f ms (database clock, handed_off to acquired)%n",
                shard, handedOffMillis, ownedMillis, unownedMillis);
        assertThat(unownedMillis).as("without an owner, by the database clock").isLessThan(250);
        assertThat(ownedMillis)
                .as("from the handoff call to the receiver's onAssigned")
                .isLessThan(1_000);
        assertThat(to.group().leadership(shard).orElseThrow().token()).isGreaterThan(token);

        await(
                "balanced again",
                () -> members.stream().allMatch(m -> m.group().ownedShards().size() == 4));
        Map<Integer, String> after = owners(group);
        assertThat(after.get(shard)).isEqualTo(to.pglease().holderId());
        List<Integer> moved = new ArrayList<>();
        for (int s = 0; s < 12; s++) {
            if (!after.get(s).equals(before.get(s))) {
                moved.add(s);
            }
        }
        assertThat(moved)
                .as("the shard handed off and the one its receiver gave back")
                .hasSize(2);
        moved.remove(Integer.valueOf(shard));
        assertThat(before.get(moved.get(0))).isEqualTo(to.pglease().holderId());
        assertThat(after.get(moved.get(0))).isEqualTo(from.pglease().holderId());
        Thread.sleep(1_600); // a lease duration later, with reads by every member: nothing moves back
        assertThat(owners(group)).isEqualTo(after);
        members.forEach(m -> assertThat(m.calls().errors).isEmpty());
    }

    @Test
    void thePlainHandoffOfAShardsLeaseMovesItToAnotherMemberToo() throws Exception {
        String group = "plain-" + System.nanoTime();
        List<Member> members = balanced(group, 8, "a", "b");
        Member from = members.get(0);
        int shard = from.group().ownedShards().last();
        long start;
        try (Connection c = h.as(h.operator).getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT " + h.schema + ".handoff(?)")) {
            ps.setString(1, group + "/" + shard);
            start = System.nanoTime();
            ps.executeQuery().close();
        }
        await(
                "the other member owns it",
                () -> members.get(1).group().ownedShards().contains(shard));
        System.out.printf(
                "handoff of lease %s/%d: owned by the other member %d ms after the call%n",
                group, shard, (System.nanoTime() - start) / 1_000_000);
        await(
                "balanced again",
                () -> members.stream().allMatch(m -> m.group().ownedShards().size() == 4));
        assertThat(from.group().ownedShards()).doesNotContain(shard);
    }

    @Test
    void aHandoffThatNoLiveMemberCouldTakeIsRefusedAndChangesNothing() throws Exception {
        String group = "nobody-" + System.nanoTime();
        List<Member> members = balanced(group, 4, "a", "b");
        int shard = members.get(0).group().ownedShards().first();
        long token = members.get(0).group().leadership(shard).orElseThrow().token();
        assertThatThrownBy(() -> groupHandoff(group, shard, "node9/"))
                .isInstanceOf(SQLException.class)
                .hasMessageContaining("node9/")
                .hasMessageContaining(members.get(1).pglease().holderId())
                .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isEqualTo("22023"));
        assertThatThrownBy(() ->
                        groupHandoff(group, shard, members.get(0).pglease().holderId()))
                .as("to the holder itself")
                .isInstanceOf(SQLException.class)
                .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isEqualTo("22023"));
        assertThat(members.get(0).group().leadership(shard).orElseThrow().token())
                .isEqualTo(token);
        assertThat(h.row(group + "/" + shard).token()).isEqualTo(token);
    }

    @Test
    void aHandoffOfAShardOrGroupThatDoesNotExistIsRefusedNamingIt() throws Exception {
        String group = "range-" + System.nanoTime();
        balanced(group, 4, "a");
        assertThatThrownBy(() -> groupHandoff(group, 4, null))
                .isInstanceOf(SQLException.class)
                .hasMessageContaining("shards 0 to 3, got 4")
                .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isEqualTo("22023"));
        assertThatThrownBy(() -> groupHandoff("no-such-group", 0, null))
                .isInstanceOf(SQLException.class)
                .hasMessageContaining("no-such-group")
                .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isEqualTo("22023"));
    }

    @Test
    void onlyTheOperatorRoleMayHandAShardOff() throws Exception {
        String group = "acl-" + System.nanoTime();
        balanced(group, 2, "a", "b");
        for (String login : List.of(h.candA, h.observer)) {
            assertThatThrownBy(() -> HostileSchema.query(
                            login, "SELECT " + h.schema + ".group_handoff('" + group + "', 0, NULL)"))
                    .as(login)
                    .isInstanceOf(SQLException.class)
                    .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isEqualTo("42501"));
        }
    }

    // ---- helpers ----

    private static long groupHandoff(String group, int shard, String to) throws SQLException {
        try (Connection c = h.as(h.operator).getConnection()) {
            return groupHandoff(c, group, shard, to);
        }
    }

    private static long groupHandoff(Connection c, String group, int shard, String to) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT " + h.schema + ".group_handoff(?, ?, ?)")) {
            ps.setString(1, group);
            ps.setInt(2, shard);
            ps.setString(3, to);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    /** From the handoff with {@code token} to the next grant of {@code lease}, by the history's database times. */
    private static double unownedMillis(String lease, long token) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT extract(epoch FROM g.at - e.at) * 1000 FROM "
                        + h.schema + ".lease_events e JOIN " + h.schema + ".lease_events g ON g.name = e.name"
                        + " AND g.token = e.token + 1 WHERE e.name = ? AND e.token = ? AND e.kind = 'handed_off'")) {
            ps.setString(1, lease);
            ps.setLong(2, token);
            try (ResultSet rs = ps.executeQuery()) {
                assertThat(rs.next())
                        .as("a grant right after the handoff of " + lease)
                        .isTrue();
                return rs.getDouble(1);
            }
        }
    }

    /** {@code fence(lease, token)} in a transaction of the lease's login. */
    private static void fence(DataSource login, Leadership grant) throws SQLException {
        try (Connection c = login.getConnection()) {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("SELECT " + h.schema + ".fence(?, ?)")) {
                ps.setString(1, grant.leaseName());
                ps.setLong(2, grant.token());
                ps.executeQuery().close();
            } finally {
                c.rollback();
            }
        }
    }

    private static Map<Integer, String> owners(String group) throws SQLException {
        Map<Integer, String> out = new HashMap<>();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT shard, owner FROM " + h.schema
                        + ".group_shard_status WHERE group_name = ? AND owner IS NOT NULL")) {
            ps.setString(1, group);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.put(rs.getInt(1), rs.getString(2));
                }
            }
        }
        return out;
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - end > 0) {
                throw new AssertionError("timed out waiting for: " + what);
            }
            Thread.sleep(2);
        }
    }
}
