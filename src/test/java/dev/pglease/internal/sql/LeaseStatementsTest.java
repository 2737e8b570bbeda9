package dev.pglease.internal.sql;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.LeaderInfo;
import dev.pglease.TestDatabase;
import dev.pglease.internal.store.JdbcLeaseStore;
import dev.pglease.internal.store.LeaseStore;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The lease statements against a real PostgreSQL: the protocol of docs/protocol.md, statement by statement. */
@Tag("core")
class LeaseStatementsTest {

    private static final Duration TTL = Duration.ofSeconds(30);
    private static String schema;
    private static LeaseStatements sql;
    private static Connection c;

    @BeforeAll
    static void setUp() throws SQLException {
        schema = TestDatabase.freshSchema();
        sql = new LeaseStatements(schema);
        c = TestDatabase.dataSource().getConnection();
    }

    @AfterAll
    static void tearDown() throws SQLException {
        c.close();
    }

    @Test
    void aLeaseDurationIsRoundedUpToWholeMillisecondsNeverDown() throws SQLException {
        String name = lease("rounding");
        JdbcLeaseStore store =
                new JdbcLeaseStore(TestDatabase.dataSource(), sql, Duration.ofSeconds(5), Duration.ofSeconds(2), false);
        try {
            assertThat(store.acquire(name, "A", Duration.ofNanos(1_500_000_001L))
                            .granted())
                    .isTrue();
        } finally {
            store.close();
        }
        try (PreparedStatement ps =
                c.prepareStatement("SELECT extract(epoch FROM expires_at - acquired_at) * 1000 FROM " + schema
                        + ".leases WHERE name = ?")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                assertThat(rs.getDouble(1))
                        .as("granted ms for 1500.000001 ms asked")
                        .isGreaterThanOrEqualTo(1501);
            }
        }
    }

    @Test
    void twoFirstAcquiresOfANewLeaseRaceWithoutAnError() throws Exception {
        String name = lease("first-race");
        try (Connection a = TestDatabase.dataSource().getConnection();
                Connection b = TestDatabase.dataSource().getConnection()) {
            a.setAutoCommit(false);
            assertThat(sql.acquire(a, name, "A", TTL).granted()).isTrue(); // inserted, not yet committed
            java.util.concurrent.CompletableFuture<LeaseStore.Acquired> second =
                    java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                        try {
                            return sql.acquire(b, name, "B", TTL);
                        } catch (SQLException e) {
                            throw new IllegalStateException(e);
                        }
                    });
            Thread.sleep(300);
            a.commit();
            LeaseStore.Acquired r = second.get(10, java.util.concurrent.TimeUnit.SECONDS);
            assertThat(r.granted())
                    .as("the second first acquire is denied, not an error")
                    .isFalse();
        }
    }

    @Test
    void theWarmUpOfANewSessionLeavesNoLeaseNoEventAndNoNotificationBehind() throws SQLException {
        try (Connection warmed = TestDatabase.dataSource().getConnection();
                Connection listener = TestDatabase.dataSource().getConnection();
                Statement st = c.createStatement()) {
            listener.createStatement().execute("LISTEN \"" + schema + ".leases\"");
            long eventsBefore = count(st, "SELECT count(*) FROM " + schema + ".lease_events");

            sql.warmUp(warmed, "A");

            assertThat(warmed.getAutoCommit())
                    .as("auto-commit after the warm-up")
                    .isTrue();
            assertThat(count(
                            st,
                            "SELECT count(*) FROM " + schema + ".leases WHERE starts_with(name, '"
                                    + LeaseStatements.WARM_UP_NAME_PREFIX + "')"))
                    .as("warm-up rows")
                    .isZero();
            assertThat(count(st, "SELECT count(*) FROM " + schema + ".lease_events"))
                    .as("events")
                    .isEqualTo(eventsBefore);
            org.postgresql.PGNotification[] heard =
                    listener.unwrap(org.postgresql.PGConnection.class).getNotifications(500);
            assertThat(heard == null ? 0 : heard.length)
                    .as("notifications heard")
                    .isZero();
            // the warmed session goes on to grant, release and take over as any other
            String name = lease("after-warm-up");
            LeaseStore.Acquired granted = sql.acquire(warmed, name, "A", TTL);
            assertThat(granted.granted()).isTrue();
            assertThat(granted.token()).isEqualTo(1);
        }
    }

    private static long count(Statement st, String query) throws SQLException {
        try (ResultSet rs = st.executeQuery(query)) {
            rs.next();
            return rs.getLong(1);
        }
    }

    private static String lease(String name) {
        return name + "-" + System.nanoTime();
    }

    private void expire(String name) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("UPDATE " + schema
                + ".leases SET expires_at = clock_timestamp() - interval '1 millisecond' WHERE name = ?")) {
            ps.setString(1, name);
            ps.executeUpdate();
        }
    }

    @Test
    void firstAcquireCreatesTheLeaseWithTokenOne() throws SQLException {
        String name = lease("first");
        LeaseStore.Acquired a = sql.acquire(c, name, "A", TTL);
        assertThat(a.granted()).isTrue();
        assertThat(a.token()).isEqualTo(1);
        assertThat(a.holder()).isEqualTo("A");
    }

    @Test
    void deniedAcquireTellsWhoHoldsItAndHowLongRemainsOnTheDatabaseClock() throws SQLException {
        String name = lease("denied");
        sql.acquire(c, name, "A", TTL);
        LeaseStore.Acquired b = sql.acquire(c, name, "B", TTL);
        assertThat(b.granted()).isFalse();
        assertThat(b.holder()).isEqualTo("A");
        assertThat(b.token()).isEqualTo(1);
        assertThat(b.waitMillis()).isBetween(TTL.toMillis() - 5_000, TTL.toMillis());
    }

    @Test
    void theHolderCanNotAcquireAgainWhileItHoldsTheLease() throws SQLException {
        String name = lease("again");
        sql.acquire(c, name, "A", TTL);
        assertThat(sql.acquire(c, name, "A", TTL).granted()).isFalse();
    }

    @Test
    void renewalExtendsTheExpiryAndKeepsTheToken() throws SQLException {
        String name = lease("renew");
        long token = sql.acquire(c, name, "A", Duration.ofSeconds(2)).token();
        List<String> renewed = sql.renew(c, "A", List.of(new LeaseStore.Held(name, token, TTL.toMillis())))
                .renewed();
        assertThat(renewed).containsExactly(name);
        assertThat(sql.currentLeader(c, name)).get().satisfies(info -> {
            assertThat(info.token()).isEqualTo(token);
            assertThat(info.remaining()).isGreaterThan(Duration.ofSeconds(25));
        });
    }

    @Test
    void anExpiredLeaseCanNotBeRenewed() throws SQLException {
        String name = lease("expired");
        long token = sql.acquire(c, name, "A", TTL).token();
        expire(name);
        assertThat(sql.renew(c, "A", List.of(new LeaseStore.Held(name, token, TTL.toMillis())))
                        .renewed())
                .isEmpty();
        assertThat(sql.currentLeader(c, name)).isEmpty();
    }

    @Test
    void renewalWithAnOldTokenOrAnotherHolderFails() throws SQLException {
        String name = lease("wrong");
        long token = sql.acquire(c, name, "A", TTL).token();
        assertThat(sql.renew(c, "A", List.of(new LeaseStore.Held(name, token - 1, TTL.toMillis())))
                        .renewed())
                .isEmpty();
        assertThat(sql.renew(c, "B", List.of(new LeaseStore.Held(name, token, TTL.toMillis())))
                        .renewed())
                .isEmpty();
    }

    @Test
    void takeoverOfAnExpiredLeaseBumpsTheTokenByOne() throws SQLException {
        String name = lease("takeover");
        long first = sql.acquire(c, name, "A", TTL).token();
        expire(name);
        LeaseStore.Acquired b = sql.acquire(c, name, "B", TTL);
        assertThat(b.granted()).isTrue();
        assertThat(b.token()).isEqualTo(first + 1);
        assertThat(sql.renew(c, "A", List.of(new LeaseStore.Held(name, first, TTL.toMillis())))
                        .renewed())
                .isEmpty();
    }

    @Test
    void releaseHandsOverWithoutWaitingForExpiry() throws SQLException {
        String name = lease("release");
        long token = sql.acquire(c, name, "A", TTL).token();
        assertThat(sql.release(c, name, "A", token)).isTrue();
        assertThat(sql.currentLeader(c, name)).isEmpty();
        LeaseStore.Acquired b = sql.acquire(c, name, "B", TTL);
        assertThat(b.granted()).isTrue();
        assertThat(b.token()).isEqualTo(token + 1);
    }

    @Test
    void releaseByAStaleHolderChangesNothing() throws SQLException {
        String name = lease("stale-release");
        long token = sql.acquire(c, name, "A", TTL).token();
        expire(name);
        long bToken = sql.acquire(c, name, "B", TTL).token();
        assertThat(sql.release(c, name, "A", token)).isFalse();
        assertThat(sql.currentLeader(c, name))
                .get()
                .extracting(LeaderInfo::holder, LeaderInfo::token)
                .containsExactly("B", bToken);
    }

    @Test
    void batchRenewalRenewsEveryHeldLeaseInOneStatementAndSkipsLostOnes() throws SQLException {
        List<LeaseStore.Held> held = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            String name = lease("batch" + i);
            held.add(new LeaseStore.Held(name, sql.acquire(c, name, "A", TTL).token(), TTL.toMillis()));
        }
        expire(held.get(7).name());
        List<String> renewed = sql.renew(c, "A", held).renewed();
        assertThat(renewed).hasSize(49).doesNotContain(held.get(7).name());
    }

    @Test
    void everyChangeOfHolderLeavesAnEvent() throws SQLException {
        String name = lease("events");
        long t1 = sql.acquire(c, name, "A", TTL).token();
        sql.renew(c, "A", List.of(new LeaseStore.Held(name, t1, TTL.toMillis())))
                .renewed();
        expire(name);
        long t2 = sql.acquire(c, name, "B", TTL).token();
        sql.release(c, name, "B", t2);
        assertThat(events(name)).containsExactly("acquired A 1", "taken_over B 2", "released null 2");
    }

    @Test
    void operatorForceReleaseBumpsTheTokenAndIsRecorded() throws SQLException {
        String name = lease("force");
        long t1 = sql.acquire(c, name, "A", TTL).token();
        assertThat(call("SELECT " + schema + ".force_release(?)", name)).isEqualTo(t1 + 1);
        assertThat(sql.renew(c, "A", List.of(new LeaseStore.Held(name, t1, TTL.toMillis())))
                        .renewed())
                .isEmpty();
        assertThat(sql.acquire(c, name, "B", TTL).token()).isEqualTo(t1 + 2);
        assertThat(events(name)).containsExactly("acquired A 1", "force_released null 2", "acquired B 3");
        assertThat(call("SELECT " + schema + ".force_release(?)", lease("never-held")))
                .isNull();
    }

    @Test
    void handoffKeepsThePreviousHolderOutAndLetsTheTargetIn() throws SQLException {
        String name = lease("handoff");
        sql.acquire(c, name, "node1/1/aa", TTL);
        Long token = call("SELECT " + schema + ".handoff(?, 'node3')", name);
        assertThat(token).isEqualTo(2);
        assertThat(sql.acquire(c, name, "node1/1/aa", TTL).granted()).isFalse();
        LeaseStore.Acquired other = sql.acquire(c, name, "node2/1/bb", TTL);
        assertThat(other.granted()).isFalse();
        assertThat(other.waitMillis()).isPositive();
        LeaseStore.Acquired target = sql.acquire(c, name, "node3/1/cc", TTL);
        assertThat(target.granted()).isTrue();
        assertThat(target.token()).isEqualTo(3);
        assertThat(events(name)).containsExactly("acquired node1/1/aa 1", "handed_off null 2", "acquired node3/1/cc 3");
    }

    @Test
    void theTokenFollowsTheRuleEvenInAHandEditByTheOwner() throws SQLException {
        String name = lease("guard");
        long first = sql.acquire(c, name, "A", TTL).token();
        try (Statement s = c.createStatement()) {
            s.executeUpdate("UPDATE " + schema + ".leases SET token = 0 + 1, holder = 'B' WHERE name = '" + name + "'");
        }
        assertThat(call("SELECT token FROM " + schema + ".leases WHERE name = ?", name))
                .as("a new holder gets the next token whatever the edit asked for")
                .isEqualTo(first + 1);
        assertThatThrownBy(() -> {
                    try (Statement s = c.createStatement()) {
                        s.executeUpdate("DELETE FROM " + schema + ".leases WHERE name = '" + name + "'");
                    }
                })
                .isInstanceOf(SQLException.class)
                .hasMessageContaining("never deleted");
        assertThatThrownBy(() -> {
                    try (Statement s = c.createStatement()) {
                        s.executeUpdate("TRUNCATE " + schema + ".leases");
                    }
                })
                .isInstanceOf(SQLException.class)
                .hasMessageContaining("can not be truncated");
    }

    @Test
    void statusViewUsesTheDatabaseClock() throws SQLException {
        String name = lease("view");
        sql.acquire(c, name, "A", TTL);
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT holder, held, extract(epoch FROM remaining) FROM " + schema + ".lease_status WHERE name = ?")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                assertThat(rs.next()).isTrue();
                assertThat(rs.getString(1)).isEqualTo("A");
                assertThat(rs.getBoolean(2)).isTrue();
                assertThat(rs.getDouble(3)).isBetween(25.0, 30.0);
            }
        }
        expire(name);
        try (PreparedStatement ps =
                c.prepareStatement("SELECT held, remaining FROM " + schema + ".lease_status WHERE name = ?")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                assertThat(rs.getBoolean(1)).isFalse();
                assertThat(rs.getObject(2)).isNull();
            }
        }
    }

    @Test
    void badNamesAreRefusedByTheProtocolAndByTheTableItself() {
        assertThatThrownBy(() -> sql.acquire(c, "", "A", TTL))
                .isInstanceOf(SQLException.class)
                .hasMessageContaining("a lease name must be 1 to 200 characters");
        assertThatThrownBy(() -> sql.acquire(c, "x".repeat(201), "A", TTL)).isInstanceOf(SQLException.class);
        assertThatThrownBy(() -> sql.acquire(c, "tab\tname", "A", TTL)).isInstanceOf(SQLException.class);
        assertThatThrownBy(() -> sql.acquire(c, "pay\u202Ements", "A", TTL))
                .isInstanceOf(SQLException.class)
                .hasMessageContaining("direction-changing");
        assertThatThrownBy(() -> {
                    try (Statement s = c.createStatement()) {
                        s.executeUpdate(
                                "INSERT INTO " + schema + ".leases (name, holder, holder_role, token, expires_at)"
                                        + " VALUES ('zero\u200Bwidth', 'A', 'x', 1, clock_timestamp())");
                    }
                })
                .isInstanceOf(SQLException.class)
                .hasMessageContaining("leases_name_valid");
    }

    @Test
    void forwardFenceFunctionOnlyMovesForwardAndOnlyWithTheCurrentGrant() throws SQLException {
        String resource = lease("fence");
        String name = lease("fenced");
        long first = sql.acquire(c, name, "A", TTL).token();
        String advance = "SELECT " + schema + ".advance_fence(?, '" + name + "', ";
        assertThat(callBool(advance + first + ")", resource)).isTrue();
        assertThat(callBool(advance + first + ")", resource))
                .as("again with the same grant")
                .isTrue();
        sql.release(c, name, "A", first);
        assertThat(callBool(advance + first + ")", resource))
                .as("a grant that ended")
                .isFalse();
        long second = sql.acquire(c, name, "B", TTL).token();
        assertThat(callBool(advance + second + ")", resource)).isTrue();
        assertThat(callBool(advance + first + ")", resource))
                .as("an earlier grant")
                .isFalse();
        assertThatThrownBy(() -> callBool(advance + (second + 1) + ")", resource))
                .isInstanceOf(SQLException.class)
                .hasMessageContaining("has not granted token " + (second + 1));
        String other = lease("other");
        long otherToken = sql.acquire(c, other, "C", TTL).token();
        assertThatThrownBy(() -> callBool(
                        "SELECT " + schema + ".advance_fence(?, '" + other + "', " + otherToken + ")", resource))
                .isInstanceOf(SQLException.class)
                .hasMessageContaining("is fenced by lease");
    }

    private List<String> events(String name) throws SQLException {
        List<String> out = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT kind, holder, token FROM " + schema + ".lease_events WHERE name = ? ORDER BY id")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.add(rs.getString(1) + " " + rs.getString(2) + " " + rs.getLong(3));
                }
            }
        }
        return out;
    }

    private Long call(String query, String arg) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(query)) {
            ps.setString(1, arg);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                long v = rs.getLong(1);
                return rs.wasNull() ? null : v;
            }
        }
    }

    private boolean callBool(String query, String arg) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(query)) {
            ps.setString(1, arg);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }
}
