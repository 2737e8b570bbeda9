package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.PgLease;
import dev.pglease.Required;
import dev.pglease.internal.tool.EmbeddedPostgresServer;
import dev.pglease.pgbouncer.PgBouncer;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
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
