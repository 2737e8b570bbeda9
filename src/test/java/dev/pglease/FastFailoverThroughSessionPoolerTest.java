package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.fault.kit.TcpProxy;
import dev.pglease.pgbouncer.PgBouncer;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.sql.DataSource;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * Fast failover through a session pooler, which pglease accepts (only a transaction pooler is refused at start). The
 * README: "{@code fastFailover}: Crash takeover: when the holder's database session ends (process crash,
 * {@code kill -9}, connection closed or terminated), a standby takes the lease at once with the next token instead
 * of waiting for it to expire"; "With {@code fastFailover(true)} a {@code kill -9} of the leader costs milliseconds
 * instead of a lease duration".
 *
 * <p>The holder's process dies: every one of its connections is reset at once (what the kernel does for a killed
 * process), here by a TCP proxy between the holder and its database. Directly its database sessions end and a
 * standby takes over at once. Through PgBouncer in {@code pool_mode=session} the holder's server session lives on in
 * the pooler's pool, reset with {@code DISCARD ALL}, which drops its advisory lock: the standby is woken, finds the
 * registered backend alive but no longer holding the lease's lock, and takes over at once too.
 */
class FastFailoverThroughSessionPoolerTest {

    private static final Duration LEASE = Duration.ofSeconds(6);
    private static PgBouncer bouncer;
    private static String host;
    private static int port;
    private static String schema;

    @BeforeAll
    static void start() {
        Required.assume(PgBouncer.installed(), PgBouncer.BINARY + " (Debian package pgbouncer)");
        Matcher m = Pattern.compile("//([^:/]+):(\\d+)/").matcher(TestDatabase.jdbcUrl());
        assertThat(m.find()).isTrue();
        host = m.group(1);
        port = Integer.parseInt(m.group(2));
        schema = TestDatabase.freshSchema();
        if (TestDatabase.isEmbedded()) {
            bouncer = PgBouncer.start(port, "postgres", "session", 5);
        }
    }

    @AfterAll
    static void stop() {
        if (bouncer != null) {
            bouncer.close();
        }
    }

    private static LeaseConfig config(String label) {
        return LeaseConfig.builder()
                .schema(schema)
                .holderLabel(label)
                .leaseDuration(LEASE)
                .renewDeadline(Duration.ofSeconds(4))
                .retryPeriod(Duration.ofSeconds(1))
                .fastFailover(true)
                .build();
    }

    private static DataSource through(TcpProxy proxy) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL("jdbc:postgresql://127.0.0.1:" + proxy.port() + "/postgres?user=postgres");
        ds.setConnectTimeout(2);
        return ds;
    }

    private static final LeaderListener QUIET = new LeaderListener() {
        @Override
        public void onElected(Leadership leadership) {}

        @Override
        public void onRevoked(Leadership leadership) {}
    };

    /** Milliseconds from the holder's death to the standby's grant. */
    private static long takeoverMillis(String lease, TcpProxy holderPath) throws Exception {
        try (PgLease holder = PgLease.create(through(holderPath), config("holder"));
                PgLease standby = PgLease.create(TestDatabase.dataSource(), config("standby"))) {
            Elector h = holder.elector(lease, QUIET);
            h.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            Elector s = standby.elector(lease, QUIET);
            // the holder's grant is registered for crash takeover, and the standby, denied, waits on the lease's lock
            // (that lock's key: the holder's own session watch waits on a lock of its own too)
            org.awaitility.Awaitility.await("the holder registered and the standby waiting on its lock")
                    .atMost(Duration.ofSeconds(10))
                    .until(() -> registeredAndAwaited(lease));
            assertThat(s.isLeader()).isFalse();
            long died = System.nanoTime();
            holderPath.cut(); // the holder's process is killed: all its connections reset
            s.awaitLeadership(Duration.ofSeconds(20)).orElseThrow();
            return (System.nanoTime() - died) / 1_000_000;
        }
    }

    private static boolean registeredAndAwaited(String lease) throws java.sql.SQLException {
        try (java.sql.Connection c = TestDatabase.dataSource().getConnection();
                java.sql.Statement st = c.createStatement();
                java.sql.ResultSet rs = st.executeQuery("SELECT (SELECT count(*) FROM " + schema
                        + ".fast_failover_sessions WHERE name = '" + lease + "'), (SELECT count(*) FROM pg_locks k,"
                        + " (SELECT " + schema + ".fast_failover_key('" + lease + "') AS key) f"
                        + " WHERE k.locktype = 'advisory' AND k.objsubid = 1 AND NOT k.granted"
                        + " AND k.classid::bigint = (f.key >> 32) & 4294967295"
                        + " AND k.objid::bigint = f.key & 4294967295)")) {
            rs.next();
            return rs.getLong(1) > 0 && rs.getLong(2) > 0;
        }
    }

    @Test
    void aKilledHoldersLeaseIsTakenOverAtOnceWhenItConnectsDirectly() throws Exception {
        try (TcpProxy direct = new TcpProxy(host, port)) {
            assertThat(takeoverMillis("ff-direct", direct))
                    .as("ms from the holder's death to the standby's grant, direct")
                    .isLessThan(LEASE.toMillis() / 3);
        }
    }

    @Test
    void aKilledHoldersLeaseIsTakenOverAtOnceWhenItConnectsThroughASessionPooler() throws Exception {
        Required.assume(bouncer != null, "the embedded test server (PgBouncer is started in front of it)");
        try (TcpProxy toBouncer = new TcpProxy("127.0.0.1", bouncer.port())) {
            assertThat(takeoverMillis("ff-session-pooled", toBouncer))
                    .as(
                            "ms from the holder's death to the standby's grant, through PgBouncer pool_mode=session "
                                    + "(lease duration %d ms)",
                            LEASE.toMillis())
                    .isLessThan(LEASE.toMillis() / 3);
        }
    }

    /**
     * The holder dies at any moment around the standby's first look (0 to 110 ms after the standby starts): before
     * it, while the standby peeks at the lock, or while its wait starts. Each time the standby takes the lease over
     * within a fraction of the lease.
     */
    @Test
    void aHolderKilledAroundTheStandbysFirstLookIsTakenOverAtOnce() throws Exception {
        for (int delay = 0; delay <= 110; delay += 10) {
            try (TcpProxy direct = new TcpProxy(host, port);
                    PgLease holder = PgLease.create(through(direct), config("holder"));
                    PgLease standby = PgLease.create(TestDatabase.dataSource(), config("standby"))) {
                String lease = "ff-first-look-" + delay;
                holder.elector(lease, QUIET)
                        .awaitLeadership(Duration.ofSeconds(10))
                        .orElseThrow();
                Elector s = standby.elector(lease, QUIET);
                Thread.sleep(delay);
                long died = System.nanoTime();
                direct.cut();
                s.awaitLeadership(Duration.ofSeconds(20)).orElseThrow();
                assertThat((System.nanoTime() - died) / 1_000_000)
                        .as("ms from the holder's death, %d ms after the standby started, to its grant", delay)
                        .isLessThan(LEASE.toMillis() / 3);
            }
        }
    }
}
