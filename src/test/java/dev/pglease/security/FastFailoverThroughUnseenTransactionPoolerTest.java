package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.LeaseObserver;
import dev.pglease.PgLease;
import dev.pglease.Required;
import dev.pglease.internal.tool.EmbeddedPostgresServer;
import dev.pglease.pgbouncer.PgBouncer;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * docs/fast-failover.md, "What it needs": a transaction pooler that the start-up check could not see (here: the
 * check's own connections go to PostgreSQL itself, as they may when a balancer spreads connections over more poolers
 * than the check looks at) is found out at the first lease statement that runs on another server session. The holder
 * then gives up its lease at once and reports UNSUPPORTED_POOLING: it never goes on leading on a lease connection
 * whose advisory lock and settings sit on a server session other clients get.
 */
class FastFailoverThroughUnseenTransactionPoolerTest {

    private static EmbeddedPostgresServer server;
    private static PgBouncer pooler;
    private static String schema;

    @BeforeAll
    static void start() {
        Required.assume(PgBouncer.installed(), PgBouncer.BINARY + " (Debian package pgbouncer)");
        server = EmbeddedPostgresServer.start();
        pooler = PgBouncer.start(server.port(), "postgres", "transaction", 4);
        schema = "unseen_" + ProcessHandle.current().pid();
        PgLease.migrate(plain(pooler.jdbcUrl("postgres")), schema);
    }

    @AfterAll
    static void stop() {
        for (AutoCloseable c : new AutoCloseable[] {pooler, server}) {
            try {
                if (c != null) {
                    c.close();
                }
            } catch (Exception e) {
                // best effort
            }
        }
    }

    private static PGSimpleDataSource plain(String url) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL(url);
        ds.setConnectTimeout(5);
        ds.setLoginTimeout(5);
        ds.setPrepareThreshold(0);
        return ds;
    }

    /** Connections through the pooler, except those the start-up pooler check takes, which go to PostgreSQL itself. */
    static final class UnseenPooler extends PGSimpleDataSource {
        private final PGSimpleDataSource direct = plain(server.jdbcUrl());
        private final PGSimpleDataSource pooled = plain(pooler.jdbcUrl("postgres"));

        UnseenPooler() {
            setURL(pooler.jdbcUrl("postgres"));
        }

        @Override
        public Connection getConnection() throws SQLException {
            boolean check = StackWalker.getInstance()
                    .walk(frames ->
                            frames.anyMatch(f -> f.getClassName().equals("dev.pglease.internal.store.Pooling")));
            return check ? direct.getConnection() : pooled.getConnection();
        }

        @Override
        public Connection getConnection(String user, String password) throws SQLException {
            return getConnection();
        }
    }

    @Test
    void aFastFailoverHolderWhoseLeaseStatementRunsOnAnotherServerSessionGivesItsLeaseUpAndReportsUnsupportedPooling()
            throws Exception {
        holdThenMeetAnotherServerSession("unseen-" + System.nanoTime());
    }

    /**
     * The grant was taken while another session held the lease's advisory lock (as a paused old holder's may), so it
     * was never registered for crash takeover: it is given up all the same.
     */
    @Test
    void anUnregisteredGrantIsGivenUpToo() throws Exception {
        String lease = "unseen-unregistered-" + System.nanoTime();
        try (Connection lockHolder = plain(server.jdbcUrl()).getConnection();
                PreparedStatement lock =
                        lockHolder.prepareStatement("SELECT pg_advisory_lock(" + schema + ".fast_failover_key(?))")) {
            lock.setString(1, lease);
            lock.execute();
            holdThenMeetAnotherServerSession(lease);
        }
    }

    /**
     * The first lease statement on another server session is an acquire (another elector of the same process starts
     * right after the holder's renewal), not a renewal: the held, unregistered grant is given up all the same, at once.
     */
    @Test
    void aSecondServerSessionMetByAnAcquireGivesTheHeldLeasesUpToo() throws Exception {
        String lease = "unseen-acquire-" + System.nanoTime();
        Reports reports = new Reports();
        List<Throwable> errors = reports.errors;
        CountDownLatch revoked = new CountDownLatch(1);
        LeaseConfig config = config(Duration.ofSeconds(6), Duration.ofSeconds(4), Duration.ofSeconds(2), reports);
        List<Connection> others = new ArrayList<>();
        try (Connection lockHolder = plain(server.jdbcUrl()).getConnection();
                PreparedStatement lock =
                        lockHolder.prepareStatement("SELECT pg_advisory_lock(" + schema + ".fast_failover_key(?))");
                PgLease pglease = PgLease.create(new UnseenPooler(), config)) {
            lock.setString(1, lease);
            lock.execute(); // so the grant is never registered for crash takeover
            Elector elector = pglease.elector(lease, new LeaderListener() {
                @Override
                public void onElected(Leadership leadership) {}

                @Override
                public void onRevoked(Leadership leadership) {
                    revoked.countDown();
                }
            });
            assertThat(elector.awaitLeadership(Duration.ofSeconds(10))).isPresent();
            CountDownLatch renewed = reports.nextRenewal();
            assertThat(renewed.await(10, TimeUnit.SECONDS)).as("a renewal").isTrue();
            // Right after the renewal (the next is 2 s away): other clients take the most recently used server
            // sessions, the lease connection's first, and another elector's acquire goes out on another one.
            for (int i = 0; i < 2; i++) {
                Connection other = plain(pooler.jdbcUrl("postgres")).getConnection();
                others.add(other);
                other.setAutoCommit(false);
                try (Statement st = other.createStatement()) {
                    st.execute("SELECT 1");
                }
            }
            pglease.elector(lease + "-other", new LeaderListener() {
                @Override
                public void onElected(Leadership leadership) {}

                @Override
                public void onRevoked(Leadership leadership) {}
            });
            assertThat(revoked.await(1500, TimeUnit.MILLISECONDS))
                    .as("the held lease is given up when an acquire meets another server session, before its next"
                            + " renewal")
                    .isTrue();
            // the grants end as the server session is found shared; the acquire's error is reported right after
            org.awaitility.Awaitility.await("UNSUPPORTED_POOLING reported")
                    .atMost(Duration.ofSeconds(2))
                    .until(() -> errors.stream()
                            .anyMatch(FastFailoverThroughUnseenTransactionPoolerTest::unsupportedPooling));
        } finally {
            for (Connection other : others) {
                other.close();
            }
        }
    }

    private void holdThenMeetAnotherServerSession(String lease) throws Exception {
        Reports reports = new Reports();
        List<Throwable> errors = reports.errors;
        CountDownLatch revoked = new CountDownLatch(1);
        LeaseConfig config = config(Duration.ofSeconds(4), Duration.ofMillis(2500), Duration.ofMillis(300), reports);
        List<Connection> others = new ArrayList<>();
        try (PgLease pglease = PgLease.create(new UnseenPooler(), config)) {
            Elector elector = pglease.elector(lease, new LeaderListener() {
                @Override
                public void onElected(Leadership leadership) {}

                @Override
                public void onRevoked(Leadership leadership) {
                    revoked.countDown();
                }
            });
            assertThat(elector.awaitLeadership(Duration.ofSeconds(10))).isPresent();
            // Other clients of the pooler: each takes the most recently used idle server session (the lease
            // connection's) and keeps it in a transaction, so the next renewal runs on another one.
            for (int i = 0; i < 2; i++) {
                Connection other = plain(pooler.jdbcUrl("postgres")).getConnection();
                others.add(other);
                other.setAutoCommit(false);
                try (Statement s = other.createStatement()) {
                    s.execute("SELECT 1");
                }
            }

            // The other clients keep taking the most recently used server session, as busy clients of a pooler do:
            // one that came while a renewal held the lease connection's took another, so they take again until the
            // holder's lease statement meets another server session.
            shuffleUntil(others, () -> revoked.getCount() == 0, TimeUnit.SECONDS.toNanos(20));
            assertThat(revoked.getCount())
                    .as("the leadership ends at the first renewal on another server session")
                    .isZero();
            // Its own session watch may revoke first; then it campaigns again on a new lease connection, and the
            // first lease statement that meets another server session reports it.
            shuffleUntil(
                    others,
                    () -> errors.stream().anyMatch(FastFailoverThroughUnseenTransactionPoolerTest::unsupportedPooling),
                    TimeUnit.SECONDS.toNanos(20));
            assertThat(errors)
                    .as("what the holder reports")
                    .anySatisfy(e -> assertThat(e)
                            .isInstanceOfSatisfying(
                                    LeaseException.class,
                                    l -> assertThat(l.reason()).isEqualTo(LeaseException.Reason.UNSUPPORTED_POOLING)));
        } finally {
            for (Connection other : others) {
                other.close();
            }
        }
    }

    private static LeaseConfig config(
            Duration leaseDuration, Duration renewDeadline, Duration retryPeriod, LeaseObserver observer) {
        return LeaseConfig.builder()
                .schema(schema)
                .leaseDuration(leaseDuration)
                .renewDeadline(renewDeadline)
                .retryPeriod(retryPeriod)
                .fastFailover(true)
                .observer(observer)
                .build();
    }

    /** What the holder reports: its database errors and failed renewals' causes, and its renewals on request. */
    private static final class Reports implements LeaseObserver {
        final List<Throwable> errors = new CopyOnWriteArrayList<>();
        private final java.util.concurrent.atomic.AtomicReference<CountDownLatch> renewal =
                new java.util.concurrent.atomic.AtomicReference<>();

        /** Counts down at the next successful renewal. */
        CountDownLatch nextRenewal() {
            CountDownLatch l = new CountDownLatch(1);
            renewal.set(l);
            return l;
        }

        @Override
        public void databaseError(String leaseName, Throwable cause) {
            errors.add(cause);
        }

        @Override
        public void renewFailed(String leaseName, long token, boolean lost, Throwable cause) {
            if (cause != null) {
                errors.add(cause);
            }
        }

        @Override
        public void renewed(String leaseName, long token, Duration latency) {
            CountDownLatch l = renewal.get();
            if (l != null) {
                l.countDown();
            }
        }
    }

    private static void shuffleUntil(List<Connection> others, BooleanSupplier done, long forNanos) throws Exception {
        long until = System.nanoTime() + forNanos;
        long shuffleAt = System.nanoTime();
        while (!done.getAsBoolean() && System.nanoTime() < until) {
            if (System.nanoTime() - shuffleAt > TimeUnit.MILLISECONDS.toNanos(500)) {
                // all give their server sessions back, so the holder's next statements meet them; a little later,
                // when the holder's session has been returned last, they take the most recently used again
                for (Connection other : others) {
                    other.commit();
                }
                Thread.sleep(400);
                for (Connection other : others) {
                    try (Statement s = other.createStatement()) {
                        s.execute("SELECT 1");
                    }
                }
                shuffleAt = System.nanoTime();
            }
            Thread.sleep(50);
        }
    }

    private static boolean unsupportedPooling(Throwable e) {
        return e instanceof LeaseException l && l.reason() == LeaseException.Reason.UNSUPPORTED_POOLING;
    }
}
