package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.GroupListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseGroup;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A fast-failover member watches its own lease session from a connection of its own, so that it steps down the
 * moment that session ends, before the member watching it has it removed and its shards taken over. That watch is a
 * connection like any other: it can be ended (a DBA's script, a firewall dropping long-idle connections) and fail to
 * come back (the server at max_connections). A member whose lease session ends must still never own a shard another
 * member has been granted.
 */
@Timeout(120)
class GroupSessionWatchGapTest {

    private static final Duration LEASE = Duration.ofSeconds(10);

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

    @Test
    void aMemberWhoseOwnSessionWatchCanNotComeBackStillStepsDownBeforeItsShardsAreGrantedElsewhere() throws Exception {
        String group = "watchgap-" + System.nanoTime();
        Times victimTimes = new Times();
        Times otherTimes = new Times();
        String victimApplication = "pglease-victim-" + System.nanoTime();
        Full full = new Full(TestDatabase.dataSource("ApplicationName=" + victimApplication));
        LeaseGroup victim = member("victim", full).group(group, 4, victimTimes);
        LeaseGroup other = member("other", TestDatabase.dataSource()).group(group, 4, otherTimes);
        otherTimes.rival = victim;
        await(
                "2 each",
                () -> victim.ownedShards().size() == 2 && other.ownedShards().size() == 2);
        Set<Integer> orphans = new TreeSet<>(victim.ownedShards());
        int leasePid = registeredPid(group + "/" + orphans.iterator().next());

        // The server is full (max_connections): the victim's open connections work, a new one is refused. Its
        // watch of its own lease session and its notification listener are ended (a DBA's script, a firewall
        // dropping long-idle connections) and can not come back; its lease session is alive, so nothing changes.
        full.full = true;
        assertThat(terminateAllBut(victimApplication, leasePid))
                .as("the victim's other connections")
                .isPositive();
        Thread.sleep(300);
        assertThat(victim.ownedShards()).as("its lease session is alive").isEqualTo(orphans);

        // Then its lease session ends, right after a renewal.
        victimTimes.revoked.clear();
        otherTimes.assigned.clear();
        otherTimes.alsoOwnedByRival.clear();
        String shardLease = group + "/" + orphans.iterator().next();
        java.sql.Timestamp renewed = renewedAt(shardLease);
        await("the victim renews", () -> !renewedAt(shardLease).equals(renewed));
        assertThat(terminate(leasePid)).as("the victim's lease session, ended").isTrue();
        await(
                "the other member assigned every shard of the victim's",
                () -> otherTimes.assigned.keySet().containsAll(orphans));
        await(
                "the victim stepped down from every one",
                () -> victimTimes.revoked.keySet().containsAll(orphans));
        assertThat(otherTimes.alsoOwnedByRival)
                .as("shards the victim still owned, with a valid grant, when the other member was assigned them")
                .isEmpty();
        for (int shard : orphans) {
            long granted = otherTimes.assigned.get(shard);
            long revoked = victimTimes.revoked.get(shard);
            assertThat(revoked)
                    .as(
                            "shard %d: the victim stepped down (%s ms after the other member was assigned it)",
                            shard, (revoked - granted) / 1_000_000)
                    .isLessThan(granted);
        }
    }

    private PgLease member(String label, javax.sql.DataSource dataSource) {
        PgLease p = PgLease.create(
                dataSource,
                LeaseConfig.builder()
                        .schema(schema)
                        .holderLabel(label)
                        .leaseDuration(LEASE)
                        .renewDeadline(Duration.ofSeconds(6))
                        .retryPeriod(Duration.ofSeconds(2))
                        .fastFailover(true)
                        .build());
        opened.add(p);
        return p;
    }

    /** When each shard was last assigned and revoked (System.nanoTime). */
    private static final class Times implements GroupListener {
        final Map<Integer, Long> assigned = new ConcurrentHashMap<>();
        final Map<Integer, Long> revoked = new ConcurrentHashMap<>();
        /** Shards that {@link #rival} reported owning, with a valid grant, when this member was assigned them. */
        final Set<Integer> alsoOwnedByRival = ConcurrentHashMap.newKeySet();

        volatile LeaseGroup rival;

        @Override
        public void onAssigned(int shard, Leadership leadership) {
            LeaseGroup r = rival;
            if (r != null && r.leadership(shard).filter(Leadership::isValid).isPresent()) {
                alsoOwnedByRival.add(shard);
            }
            assigned.put(shard, System.nanoTime());
        }

        @Override
        public void onRevoked(int shard, Leadership leadership) {
            revoked.put(shard, System.nanoTime());
        }
    }

    private static int registeredPid(String lease) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps =
                        c.prepareStatement("SELECT pid FROM " + schema + ".fast_failover_sessions WHERE name = ?")) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                assertThat(rs.next()).as("registration of " + lease).isTrue();
                return rs.getInt(1);
            }
        }
    }

    private static boolean terminate(int pid) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT pg_terminate_backend(?)")) {
            ps.setInt(1, pid);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    /** A data source whose server can be full: then every new connection is refused, open ones work. */
    private static final class Full extends org.springframework.jdbc.datasource.DelegatingDataSource {
        volatile boolean full;

        Full(javax.sql.DataSource target) {
            super(target);
        }

        @Override
        public Connection getConnection() throws SQLException {
            if (full) {
                throw new SQLException("sorry, too many clients already (test)", "53300");
            }
            return super.getConnection();
        }

        @Override
        public Connection getConnection(String username, String password) throws SQLException {
            return getConnection();
        }
    }

    private static java.sql.Timestamp renewedAt(String lease) {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps =
                        c.prepareStatement("SELECT renewed_at FROM " + schema + ".leases WHERE name = ?")) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                assertThat(rs.next()).as(lease).isTrue();
                return rs.getTimestamp(1);
            }
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Terminates every backend of {@code applicationName} but {@code keep}; how many. */
    private static int terminateAllBut(String applicationName, int keep) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                        + " FROM pg_stat_activity WHERE application_name = ? AND pid <> ?")) {
            ps.setString(1, applicationName);
            ps.setInt(2, keep);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
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
