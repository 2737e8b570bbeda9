package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.fault.kit.TcpProxy;
import java.time.Duration;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.sql.DataSource;
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
        return LeaseConfig.builder()
                .schema(schema)
                .holderLabel(label)
                .leaseDuration(LEASE)
                .renewDeadline(Duration.ofSeconds(4))
                .retryPeriod(Duration.ofMillis(500))
                .fastFailover(true)
                .build();
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
}
