package dev.pglease;

import static dev.pglease.LeaseGroupTest.await;
import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.fault.kit.TcpProxy;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.sql.DataSource;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * Grants that end without a change of members: a grant can lapse (expire, not released) while its member's row lives
 * on, when the member renews its row with its first answered statement after an outage and its stepped-down grants one
 * by one after it. The shards go back to the members that held them; an outage that every row and grant outlives moves
 * no shard and changes no token.
 */
@org.junit.jupiter.api.Timeout(120)
@Tag("core")
class GroupLapsedGrantsTest {

    private static final int SHARDS = 64;

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

    private LeaseGroup member(String group, String label) {
        return member(TestDatabase.dataSource(), group, label, Duration.ofMillis(1500));
    }

    private LeaseGroup member(DataSource dataSource, String group, String label, Duration leaseDuration) {
        PgLease p = PgLease.create(
                dataSource,
                LeaseConfig.builder()
                        .schema(schema)
                        .holderLabel(label)
                        .leaseDuration(leaseDuration)
                        .renewDeadline(Duration.ofMillis(1000))
                        .retryPeriod(Duration.ofMillis(250))
                        .observer(unownedTimes)
                        .build());
        opened.add(p);
        return p.group(group, SHARDS, new LeaseGroupTest.Recorder());
    }

    /** Every {@code shardUnowned} report, as "shard token". */
    private final List<String> unownedReports = new java.util.concurrent.CopyOnWriteArrayList<>();

    private final LeaseObserver unownedTimes = new LeaseObserver() {
        @Override
        public void shardUnowned(String group, int shard, long token, Duration unowned) {
            unownedReports.add(shard + " " + token);
        }
    };

    @Test
    void shardsWhoseGrantsLapsedWhileTheirMembersStayedGoBackToThoseMembers() throws Exception {
        String group = "lapsed-" + System.nanoTime();
        LeaseGroup a = member(group, "a");
        LeaseGroup b = member(group, "b");
        await(
                "32 shards each",
                () -> a.ownedShards().size() == 32 && b.ownedShards().size() == 32);
        // a join: the shards now sit where stickiness left them, not where dealing all 64 afresh would put them
        LeaseGroup c = member(group, "c");
        List<LeaseGroup> all = List.of(a, b, c);
        await("the join settled in the database", () -> settled(group, all));
        Map<Integer, String> before = new TreeMap<>(owners(group));

        // every grant lapses at once while the members' rows live on (the most any outage can lapse), and the
        // members are woken to read the group while no shard is held
        try (Connection conn = TestDatabase.dataSource().getConnection()) {
            conn.setAutoCommit(false);
            try (Statement st = conn.createStatement();
                    PreparedStatement notify = conn.prepareStatement("SELECT pg_notify(?, ?)")) {
                int lapsed = st.executeUpdate("UPDATE " + schema + ".leases SET expires_at = clock_timestamp()"
                        + " WHERE kind = 'shard' AND name LIKE '" + group + "/%'");
                assertThat(lapsed).isEqualTo(SHARDS);
                notify.setString(1, schema + ".leases");
                notify.setString(2, "{\"name\": \"" + group + "\", \"kind\": \"member_joined\"}");
                notify.execute();
            }
            conn.commit();
        }

        await("every shard held again", () -> owners(group).size() == SHARDS && settled(group, all));
        Map<Integer, String> after = new TreeMap<>(owners(group));
        List<String> moved = new ArrayList<>();
        before.forEach((shard, owner) -> {
            if (!owner.equals(after.get(shard))) {
                moved.add(shard + ": " + owner + " -> " + after.get(shard));
            }
        });
        assertThat(moved).as("shards that changed member").isEmpty();
    }

    /**
     * The database out of reach (every connection reset, new ones refused) for longer than the renew deadline but
     * shorter than the lease: every member steps down from its shards, and since their rows outlive the outage, no
     * member changed. When the database answers, no shard may have changed member.
     */
    @Test
    void anOutagePastTheRenewDeadlineThatTheMembersRowsOutliveMovesNoShard() throws Exception {
        Matcher m = Pattern.compile("//([^:/]+):(\\d+)/").matcher(TestDatabase.jdbcUrl());
        assertThat(m.find()).as("host and port in %s", TestDatabase.jdbcUrl()).isTrue();
        try (TcpProxy proxy = new TcpProxy(m.group(1), Integer.parseInt(m.group(2)))) {
            PGSimpleDataSource viaProxy = new PGSimpleDataSource();
            viaProxy.setURL(
                    TestDatabase.jdbcUrl().replaceFirst("//([^:/]+):(\\d+)/", "//127.0.0.1:" + proxy.port() + "/"));
            viaProxy.setConnectTimeout(2);
            viaProxy.setLoginTimeout(2);
            // lease 3 s, renew deadline 1 s, retry period 250 ms: an outage of 1.6 s passes every deadline, and every
            // row and grant, renewed at most 250 ms before it, lives at least 1.1 s beyond it
            Duration lease = Duration.ofMillis(3000);
            String group = "outage-" + System.nanoTime();
            LeaseGroup a = member(viaProxy, group, "a", lease);
            LeaseGroup b = member(viaProxy, group, "b", lease);
            await(
                    "32 shards each",
                    () -> a.ownedShards().size() == 32 && b.ownedShards().size() == 32);
            LeaseGroup c = member(viaProxy, group, "c", lease);
            List<LeaseGroup> all = List.of(a, b, c);
            await("the join settled in the database", () -> settled(group, all));
            Map<Integer, String> before = new TreeMap<>(owners(group));
            Map<Integer, Long> tokensBefore = tokens(group);

            proxy.cut();
            await(
                    "every member stepped down",
                    () -> a.ownedShards().isEmpty()
                            && b.ownedShards().isEmpty()
                            && c.ownedShards().isEmpty());
            Thread.sleep(400);
            proxy.restore();

            await("every shard held again", () -> settled(group, all));
            Map<Integer, String> after = new TreeMap<>(owners(group));
            List<String> moved = new ArrayList<>();
            before.forEach((shard, owner) -> {
                if (!owner.equals(after.get(shard))) {
                    moved.add(shard + ": " + owner + " -> " + after.get(shard));
                }
            });
            assertThat(moved).as("shards that changed member").isEmpty();
            assertThat(tokens(group))
                    .as("tokens: every grant outlived the outage, so each is led again with its token")
                    .isEqualTo(tokensBefore);
            Thread.sleep(500); // time without an owner is measured on the members' threads, after the grant
            assertThat(unownedReports)
                    .as("time without an owner, told once per grant (a grant led again is not a new one)")
                    .doesNotHaveDuplicates();
        }
    }

    /** Every shard held by a member, each member's own view agreeing with the database, balanced within one. */
    private static boolean settled(String group, List<LeaseGroup> members) {
        Map<Integer, String> owners = owners(group);
        if (owners.size() != SHARDS) {
            return false;
        }
        int min = Integer.MAX_VALUE;
        int max = 0;
        int total = 0;
        for (LeaseGroup g : members) {
            int n = g.ownedShards().size();
            min = Math.min(min, n);
            max = Math.max(max, n);
            total += n;
        }
        return total == SHARDS && max - min <= 1;
    }

    /** Shard number to the token of its lease. */
    private static Map<Integer, Long> tokens(String group) {
        Map<Integer, Long> out = new TreeMap<>();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement(
                        "SELECT shard, token FROM " + schema + ".group_shard_status WHERE group_name = ?")) {
            ps.setString(1, group);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.put(rs.getInt(1), rs.getLong(2));
                }
            }
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
        return out;
    }

    /** Shard number to owner, as the group's shard view shows it. */
    private static Map<Integer, String> owners(String group) {
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
}
