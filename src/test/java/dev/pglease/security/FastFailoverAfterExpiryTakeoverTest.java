package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.fault.kit.TcpProxy;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.sql.DataSource;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * README and docs/fast-failover.md: with {@code fastFailover(true)} "a {@code kill -9} of the leader costs
 * milliseconds instead of a lease duration". That holds for a leader whose grant was registered; a grant is registered
 * only at the moment it is granted, and only if the lease's advisory lock is free then. After the classic failover by
 * expiry (the old holder's process paused: a long GC, a stopped VM), the old holder's database session still holds
 * the lock when the new leader is granted, so the new leader's grant is never registered, and nothing registers it
 * later, when the old session is gone. The new leader's crash then costs a whole lease duration for its whole term.
 */
class FastFailoverAfterExpiryTakeoverTest {

    private static final Duration LEASE = Duration.ofSeconds(6);
    private static final LeaderListener QUIET = new LeaderListener() {
        @Override
        public void onElected(Leadership leadership) {}

        @Override
        public void onRevoked(Leadership leadership) {}
    };

    private static LeaseConfig config(String schema, String label) {
        return config(schema, label, Duration.ofMillis(500));
    }

    private static LeaseConfig config(String schema, String label, Duration retryPeriod) {
        return LeaseConfig.builder()
                .schema(schema)
                .holderLabel(label)
                .leaseDuration(LEASE)
                .renewDeadline(Duration.ofSeconds(4))
                .retryPeriod(retryPeriod)
                .fastFailover(true)
                .build();
    }

    private static String query(String sql, String lease) throws Exception {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement(sql)) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getString(1) : null;
            }
        }
    }

    private static DataSource through(TcpProxy proxy) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL(TestDatabase.jdbcUrl().replaceFirst("//[^/]+/", "//127.0.0.1:" + proxy.port() + "/"));
        ds.setConnectTimeout(2);
        return ds;
    }

    private static void signal(long pid, String signal) throws Exception {
        assertThat(new ProcessBuilder("kill", "-" + signal, Long.toString(pid))
                        .inheritIO()
                        .start()
                        .waitFor())
                .as("kill -%s %d", signal, pid)
                .isZero();
    }

    @Test
    void aLeaderElectedWhileTheOldHoldersSessionStillHeldTheLockIsTakenOverAtOnceWhenItDies() throws Exception {
        dev.pglease.Required.assume(!TestDatabase.throughPooler(), "a direct connection (fast failover's own lane)");
        String schema = TestDatabase.freshSchema();
        String lease = "after-expiry";
        Matcher m = Pattern.compile("//([^:/]+):(\\d+)/").matcher(TestDatabase.jdbcUrl());
        assertThat(m.find()).isTrue();
        String host = m.group(1);
        int port = Integer.parseInt(m.group(2));

        try (Node old = Node.start(
                        Map.of(),
                        "--jdbc-url",
                        TestDatabase.jdbcUrl(),
                        "--schema",
                        schema,
                        "--lease",
                        lease,
                        "--holder-label",
                        "old",
                        "--lease-duration",
                        "6s",
                        "--renew-deadline",
                        "4s",
                        "--retry-period",
                        "500ms",
                        "--fast-failover");
                TcpProxy toA = new TcpProxy(host, port);
                TcpProxy toB = new TcpProxy(host, port);
                PgLease a = PgLease.create(through(toA), config(schema, "a"));
                PgLease b = PgLease.create(through(toB), config(schema, "b"))) {
            Map<String, Object> started = old.await("started", 30_000);
            old.await("elected", 30_000);
            long oldPid = Long.parseLong(((String) started.get("holder")).split("/")[1]);
            Elector ea = a.elector(lease, QUIET);
            Elector eb = b.elector(lease, QUIET);
            Thread.sleep(1500); // both standbys were denied and wait

            signal(oldPid, "STOP"); // the old leader's process pauses; its database session lives on with the lock
            long waited = System.nanoTime();
            while (!ea.isLeader() && !eb.isLeader()) {
                assertThat(Duration.ofNanos(System.nanoTime() - waited))
                        .as("a standby takes the expired lease")
                        .isLessThan(LEASE.multipliedBy(3));
                Thread.sleep(20);
            }
            signal(oldPid, "KILL"); // the paused process is killed: its session and its lock are gone
            Thread.sleep(2000); // the survivors settle; the new leader renews

            boolean aLeads = ea.isLeader();
            TcpProxy leaderPath = aLeads ? toA : toB;
            Elector standby = aLeads ? eb : ea;
            assertThat(standby.isLeader()).isFalse();
            long died = System.nanoTime();
            leaderPath.cut(); // the new leader's process is killed: all its connections reset
            Leadership taken = standby.awaitLeadership(LEASE.multipliedBy(3)).orElseThrow();
            long tookMillis = (System.nanoTime() - died) / 1_000_000;

            assertThat(taken).isNotNull();
            assertThat(tookMillis)
                    .as(
                            "ms from the new leader's death to the standby's grant (lease duration %d ms)",
                            LEASE.toMillis())
                    .isLessThan(LEASE.toMillis() / 3);
        }
    }

    /**
     * A standby that was refused by a holder whose grant was not registered yet (the holder's lock was free, so the
     * standby had nothing to wait on) looks again a retryPeriod later, and waits on the holder's lock once the holder
     * has registered (at its next renewal): the holder's crash then costs milliseconds, not what was left of its
     * lease. Both use the same timings, as one deployment does.
     */
    @Test
    void aStandbyRefusedByAnUnregisteredHolderWaitsOnItsLockOnceItRegistersAndTakesOverAtOnceWhenItDies()
            throws Exception {
        dev.pglease.Required.assume(!TestDatabase.throughPooler(), "a direct connection (fast failover's own lane)");
        String schema = TestDatabase.freshSchema();
        String lease = "unregistered-holder";
        Matcher m = Pattern.compile("//([^:/]+):(\\d+)/").matcher(TestDatabase.jdbcUrl());
        assertThat(m.find()).isTrue();
        try (TcpProxy toHolder = new TcpProxy(m.group(1), Integer.parseInt(m.group(2)));
                PgLease holder = PgLease.create(through(toHolder), config(schema, "holder", Duration.ofSeconds(2)));
                PgLease standby =
                        PgLease.create(TestDatabase.dataSource(), config(schema, "standby", Duration.ofSeconds(2)));
                Connection earlier = TestDatabase.dataSource().getConnection()) {
            // an earlier holder's session still holds the lease's lock: the holder's grant is not registered
            try (Statement st = earlier.createStatement()) {
                st.execute("SELECT pg_advisory_lock(" + schema + ".fast_failover_key('" + lease + "'))");
            }
            Elector eh = holder.elector(lease, QUIET);
            eh.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            String renewedAt = query("SELECT renewed_at::text FROM " + schema + ".leases WHERE name = ?", lease);
            Awaitility.await("the holder renews")
                    .atMost(Duration.ofSeconds(5))
                    .pollInterval(Duration.ofMillis(5))
                    .until(() -> !renewedAt.equals(
                            query("SELECT renewed_at::text FROM " + schema + ".leases WHERE name = ?", lease)));
            // right after a renewal: the holder tries the lock again only at its next one, two seconds on
            try (Statement st = earlier.createStatement()) {
                st.execute("SELECT pg_advisory_unlock_all()");
            }
            Elector es = standby.elector(lease, QUIET); // refused, with the holder's lock free
            String onTheLeasesLock = "SELECT count(*) FROM pg_locks k, (SELECT " + schema
                    + ".fast_failover_key(?) AS key) f WHERE k.locktype = 'advisory' AND k.objsubid = 1"
                    + " AND k.classid::bigint = (f.key >> 32) & 4294967295 AND k.objid::bigint = f.key & 4294967295";
            Awaitility.await("the holder registers its grant at its next renewal, holding the lease's lock")
                    .atMost(Duration.ofSeconds(5))
                    .until(() ->
                            "1".equals(query(onTheLeasesLock + " AND k.granted AND k.mode = 'ExclusiveLock'", lease)));
            Awaitility.await("the refused standby waits on the holder's lock")
                    .atMost(Duration.ofSeconds(5))
                    .until(() -> "1".equals(query(onTheLeasesLock + " AND NOT k.granted", lease)));
            assertThat(es.isLeader()).isFalse();
            long died = System.nanoTime();
            toHolder.cut(); // the holder's process is killed: all its connections reset
            es.awaitLeadership(LEASE.multipliedBy(3)).orElseThrow();
            long tookMillis = (System.nanoTime() - died) / 1_000_000;
            assertThat(tookMillis)
                    .as("ms from the holder's death to the standby's grant (lease duration %d ms)", LEASE.toMillis())
                    .isLessThan(LEASE.toMillis() / 3);
        }
    }
}
