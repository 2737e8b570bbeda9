package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.fault.kit.TcpProxy;
import java.net.URI;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.time.Instant;
import java.time.InstantSource;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.sql.DataSource;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * The proviso of the second guarantee: a holder's belief that it leads ends before its grant's expiry on the
 * database clock as long as the holder's clocks run no more than {@code (leaseDuration - renewDeadline) /
 * leaseDuration} slower than the database's (here 2 s / 1.2 s: 40 %). The holder's monotonic and wall clocks are
 * both scaled (a machine whose clock runs fast or slow), it renews once through a proxy, and the proxy is cut at
 * that moment: no renewal succeeds after it. Then the moment {@link Leadership#isValid()} turns false is compared
 * with the expiry the database gave that renewal. A fast clock and a clock slower by less than the margin end the
 * belief first; a clock slower by more than the margin lets the belief outlast the grant, which is why the proviso
 * is there (and why the configuration insists on a margin of at least 10 %).
 */
@Tag("core")
class ClockRateMarginTest {

    private static final Duration LEASE = Duration.ofMillis(2000);
    private static final Duration RENEW_DEADLINE = Duration.ofMillis(1200);
    private static final Duration RETRY = Duration.ofMillis(400);

    private static TcpProxy proxy;
    private static String schema;
    private static DataSource proxied;

    @BeforeAll
    static void proxy() {
        schema = TestDatabase.freshSchema();
        URI target = URI.create(TestDatabase.jdbcUrl().substring("jdbc:".length()));
        proxy = new TcpProxy(target.getHost(), target.getPort() == -1 ? 5432 : target.getPort());
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL(TestDatabase.jdbcUrl().replaceFirst("//[^/]+/", "//127.0.0.1:" + proxy.port() + "/"));
        ds.setConnectTimeout(2);
        ds.setLoginTimeout(2);
        proxied = ds;
    }

    @AfterAll
    static void stop() {
        if (proxy != null) {
            proxy.close();
        }
    }

    @Test
    void aClockRunningFastEndsTheBeliefEarly() throws Exception {
        assertThat(beliefEndMinusDatabaseExpiry(1.5)).isNegative();
    }

    @Test
    void aClockRunningSlowByLessThanTheMarginStillEndsTheBeliefBeforeTheDatabaseExpiry() throws Exception {
        // 20 % slow, half the margin: the belief ends 1.5 s after the renewal was sent, 500 ms before the expiry at
        // the earliest, which leaves room for a test thread that a loaded machine runs late
        assertThat(beliefEndMinusDatabaseExpiry(0.8)).isNegative();
    }

    @Test
    void aClockRunningSlowByMoreThanTheMarginLetsTheBeliefOutlastTheGrant() throws Exception {
        // 70 % slow: the belief ends 4 s after the renewal was sent, 2 s after the expiry that renewal got if it
        // reached
        // the server at once; a renewal that a loaded machine or pooler kept 600 ms on its way (seen at 50 % slow,
        // where the belief outlasts the grant by 400 ms only) still shows it
        assertThat(beliefEndMinusDatabaseExpiry(0.3)).isPositive();
    }

    /**
     * Leads with clocks running at {@code rate} times real time, cuts the database off right after a successful
     * renewal, and returns when the belief ended (real time) minus the expiry the database gave that renewal.
     */
    private static Duration beliefEndMinusDatabaseExpiry(double rate) throws Exception {
        proxy.restore();
        String lease = "rate-" + rate + "-" + System.nanoTime();
        ScaledClock clock = new ScaledClock(rate);
        AtomicBoolean leading = new AtomicBoolean();
        CountDownLatch cut = new CountDownLatch(1);
        LeaseObserver cutAfterARenewal = new LeaseObserver() {
            @Override
            public void renewed(String leaseName, long token, Duration latency) {
                if (leading.get() && cut.getCount() > 0) {
                    proxy.cut(); // no later renewal can succeed: the one just answered is the last
                    cut.countDown();
                }
            }
        };
        LeaseConfig config = LeaseConfig.builder()
                .schema(schema)
                .holderLabel("rate-" + rate)
                .leaseDuration(LEASE)
                .renewDeadline(RENEW_DEADLINE)
                .retryPeriod(RETRY)
                .ticker(clock::ticker)
                .wallClock(clock)
                .observer(cutAfterARenewal)
                .build();
        try (PgLease pglease = PgLease.create(proxied, config);
                Elector elector = pglease.elector(lease, new LeaderListener() {
                    @Override
                    public void onElected(Leadership leadership) {}

                    @Override
                    public void onRevoked(Leadership leadership) {}
                })) {
            Leadership grant = elector.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            leading.set(true);
            assertThat(cut.await(10, TimeUnit.SECONDS))
                    .as("a renewal was answered")
                    .isTrue();
            while (grant.isValid()) {
                Thread.onSpinWait();
            }
            Instant beliefEnded = Instant.now();
            Instant expiry = databaseExpiry(lease);
            proxy.restore(); // so that closing releases the lease at once
            return Duration.between(expiry, beliefEnded);
        } finally {
            proxy.restore();
        }
    }

    private static Instant databaseExpiry(String lease) throws Exception {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps =
                        c.prepareStatement("SELECT expires_at FROM " + schema + ".leases WHERE name = ?")) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                assertThat(rs.next()).isTrue();
                return rs.getTimestamp(1).toInstant();
            }
        }
    }

    /** The monotonic and the wall clock of a machine whose clock runs at {@code rate} times real time. */
    private static final class ScaledClock implements InstantSource {
        private final double rate;
        private final long startNanos = System.nanoTime();
        private final Instant startWall = Instant.now();

        ScaledClock(double rate) {
            this.rate = rate;
        }

        long ticker() {
            return startNanos + (long) ((System.nanoTime() - startNanos) * rate);
        }

        @Override
        public Instant instant() {
            return startWall.plusNanos((long) ((System.nanoTime() - startNanos) * rate));
        }
    }
}
