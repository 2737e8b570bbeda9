package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.PgLease;
import dev.pglease.Required;
import dev.pglease.internal.tool.EmbeddedPostgresServer;
import dev.pglease.pgbouncer.PgBouncer;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * docs/pgbouncer.md and the start-up check: a data source that reaches PostgreSQL through a transaction pooler is
 * found out at start, and fast failover (session advisory locks on one server session) is refused there. PgBouncer is
 * single-threaded, so it is scaled out as several processes behind a balancer ({@code so_reuseport}, HAProxy, DNS
 * round robin): each new client connection lands on one of them. The check takes its two connections at once; behind
 * a balancer they land on two poolers, each serving its one client from the same server connection while nothing
 * else runs there, so every identity stays put and the check says "not pooled". In production the other clients of
 * those poolers then share the lease connection's server sessions: advisory locks and session settings land on
 * whatever server session served a transaction.
 */
class TransactionPoolersBehindABalancerTest {

    private static EmbeddedPostgresServer server;
    private static PgBouncer first;
    private static PgBouncer second;
    private static String schema;

    @BeforeAll
    static void start() {
        Required.assume(PgBouncer.installed(), PgBouncer.BINARY + " (Debian package pgbouncer)");
        server = EmbeddedPostgresServer.start();
        first = PgBouncer.start(server.port(), "postgres", "transaction", 2);
        second = PgBouncer.start(server.port(), "postgres", "transaction", 2);
        schema = "balanced_" + ProcessHandle.current().pid();
        PgLease.migrate(direct(first.jdbcUrl("postgres")), schema);
    }

    @AfterAll
    static void stop() {
        for (AutoCloseable c : new AutoCloseable[] {first, second, server}) {
            try {
                if (c != null) {
                    c.close();
                }
            } catch (Exception e) {
                // best effort
            }
        }
    }

    private static PGSimpleDataSource direct(String url) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL(url);
        ds.setConnectTimeout(5);
        ds.setLoginTimeout(5);
        return ds;
    }

    /** A balancer in round-robin mode in front of the poolers: each new connection goes to the next one. */
    static final class RoundRobin extends PGSimpleDataSource {
        private final List<PGSimpleDataSource> poolers;
        private final AtomicInteger next = new AtomicInteger();

        RoundRobin(PGSimpleDataSource... poolers) {
            this.poolers = List.of(poolers);
            setURL(poolers[0].getURL());
        }

        @Override
        public Connection getConnection() throws SQLException {
            return poolers.get(Math.floorMod(next.getAndIncrement(), poolers.size()))
                    .getConnection();
        }

        @Override
        public Connection getConnection(String user, String password) throws SQLException {
            return getConnection();
        }
    }

    /**
     * The harm in production: pglease's lease session settings (its statement and lock timeouts) stay on a pooled
     * server session, and the poolers' other clients get them. Here the elector leads and renews; other clients of
     * each pooler then run their transactions on the server sessions it used.
     */
    @Test
    void anElectorThroughTransactionPoolersBehindARoundRobinBalancerLeavesItsSessionSettingsToNoOtherClient()
            throws Exception {
        RoundRobin balanced = new RoundRobin(direct(first.jdbcUrl("postgres")), direct(second.jdbcUrl("postgres")));
        LeaseConfig config = LeaseConfig.builder()
                .schema(schema)
                .leaseDuration(Duration.ofSeconds(4))
                .renewDeadline(Duration.ofMillis(2500))
                .retryPeriod(Duration.ofMillis(500))
                .build();
        try (PgLease pglease = PgLease.create(balanced, config)) {
            Elector elector = pglease.elector("balanced-" + System.nanoTime(), new LeaderListener() {
                @Override
                public void onElected(Leadership leadership) {}

                @Override
                public void onRevoked(Leadership leadership) {}
            });
            assertThat(elector.awaitLeadership(Duration.ofSeconds(10))).isPresent();
            Thread.sleep(1500); // a few renewals
            List<String> seen = new ArrayList<>();
            for (PgBouncer pooler : List.of(first, second)) {
                for (int i = 0; i < 4; i++) {
                    try (Connection other = direct(pooler.jdbcUrl("postgres")).getConnection();
                            Statement s = other.createStatement();
                            ResultSet rs = s.executeQuery(
                                    "SELECT current_setting('statement_timeout') || '/' || current_setting('lock_timeout')")) {
                        rs.next();
                        seen.add(rs.getString(1));
                    }
                }
            }
            assertThat(seen)
                    .as("statement_timeout/lock_timeout seen by the poolers' other clients")
                    .containsOnly("0/0");
        }
    }

    @Test
    void fastFailoverThroughTransactionPoolersBehindARoundRobinBalancerIsRefusedAtStart() {
        RoundRobin balanced = new RoundRobin(direct(first.jdbcUrl("postgres")), direct(second.jdbcUrl("postgres")));
        LeaseConfig config = LeaseConfig.builder()
                .schema(schema)
                .leaseDuration(Duration.ofSeconds(4))
                .renewDeadline(Duration.ofMillis(2500))
                .retryPeriod(Duration.ofMillis(500))
                .fastFailover(true)
                .build();

        assertThatThrownBy(() -> {
                    try (PgLease accepted = PgLease.create(balanced, config)) {
                        assertThat(accepted).isNotNull();
                    }
                })
                .isInstanceOf(LeaseException.class)
                .extracting(e -> ((LeaseException) e).reason())
                .isEqualTo(LeaseException.Reason.UNSUPPORTED_POOLING);
    }
}
