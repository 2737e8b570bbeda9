package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.internal.store.Pooling;
import dev.pglease.internal.store.StartupChecks;
import dev.pglease.internal.tool.EmbeddedPostgresServer;
import dev.pglease.pgbouncer.PgBouncer;
import java.sql.PreparedStatement;
import java.time.Duration;
import javax.sql.DataSource;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * Electors behind PgBouncer. In {@code pool_mode=transaction} a client connection is not one server session, so
 * LISTEN through the pooler would never deliver: pglease finds the pooler at start and either listens on a direct
 * data source or lets standbys poll every retryPeriod. What can not work is refused at start, not left to hang.
 */
class PgBouncerTest {

    private static final LeaseListener NO_OP = new LeaseListener();
    private static EmbeddedPostgresServer server;
    private static PgBouncer transaction;
    private static PgBouncer session;
    private static String schema;

    @BeforeAll
    static void start() {
        if (!PgBouncer.installed()) {
            String why = PgBouncer.BINARY + " is not installed (Debian package pgbouncer)";
            if ("true".equals(System.getenv("CI"))) {
                throw new IllegalStateException("CI installs pgbouncer (.ci/run), but " + why);
            }
            Assumptions.abort(why);
        }
        server = EmbeddedPostgresServer.start();
        transaction = PgBouncer.start(server.port(), "postgres", "transaction", 5);
        session = PgBouncer.start(server.port(), "postgres", "session", 5);
        schema = "bouncer_" + ProcessHandle.current().pid();
        // the migration itself runs through the transaction pooler
        PgLease.migrate(dataSource(transaction.jdbcUrl("postgres")), schema);
    }

    @AfterAll
    static void stop() {
        for (AutoCloseable c : new AutoCloseable[] {transaction, session, server}) {
            try {
                if (c != null) {
                    c.close();
                }
            } catch (Exception e) {
                // best effort
            }
        }
    }

    static DataSource dataSource(String url) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL(url);
        ds.setConnectTimeout(5);
        ds.setLoginTimeout(5);
        return ds;
    }

    static DataSource pooled() {
        return dataSource(transaction.jdbcUrl("postgres"));
    }

    static DataSource direct() {
        return dataSource(server.jdbcUrl());
    }

    static LeaseConfig.Builder config(Duration retryPeriod) {
        return LeaseConfig.builder()
                .schema(schema)
                .leaseDuration(retryPeriod.multipliedBy(8))
                .renewDeadline(retryPeriod.multipliedBy(5))
                .retryPeriod(retryPeriod);
    }

    @Test
    void theCheckTellsATransactionPoolerFromADirectConnectionAndASessionPooler() throws Exception {
        assertThat(Pooling.transactionPooled(direct())).as("direct").isFalse();
        assertThat(Pooling.transactionPooled(dataSource(session.jdbcUrl("postgres"))))
                .as("session pooling")
                .isFalse();
        assertThat(Pooling.transactionPooled(pooled()))
                .as("transaction pooling")
                .isTrue();
    }

    @Test
    void throughATransactionPoolerWithoutADirectDataSourceStandbysPollAndNoticeARelease() throws Exception {
        Duration retry = Duration.ofMillis(500);
        String lease = "poll-" + System.nanoTime();
        try (PgLease a = PgLease.create(pooled(), config(retry).holderLabel("a").build());
                PgLease b =
                        PgLease.create(pooled(), config(retry).holderLabel("b").build())) {
            assertThat(a.notificationMode()).isEqualTo(StartupChecks.NotificationMode.POLLING);
            Elector first = a.elector(lease, NO_OP);
            Leadership l = first.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            Elector second = b.elector(lease, NO_OP);
            Thread.sleep(retry.toMillis() * 3); // the standby has been denied and polls
            assertThat(second.isLeader()).isFalse();

            // a fenced write through the pooler: guard and work in one transaction, on one server session
            int written = a.inFencedTransaction(l, c -> {
                try (PreparedStatement ps = c.prepareStatement("SELECT 1")) {
                    return ps.executeQuery().next() ? 1 : 0;
                }
            });
            assertThat(written).isEqualTo(1);

            long released = System.nanoTime();
            first.close();
            Leadership taken = second.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            Duration took = Duration.ofNanos(System.nanoTime() - released);

            assertThat(taken.token()).isEqualTo(l.token() + 1);
            assertThat(took)
                    .as("a polling standby notices the release within retryPeriod (+ jitter and a round trip)")
                    .isLessThan(retry.plusMillis(400));
        }
    }

    @Test
    void withADirectDataSourceStandbysAreWokenByNotifyThroughThePooler() throws Exception {
        Duration retry = Duration.ofSeconds(3);
        String lease = "listen-" + System.nanoTime();
        LeaseConfig withDirect = config(retry).directDataSource(direct()).build();
        try (PgLease a = PgLease.create(pooled(), withDirect);
                PgLease b = PgLease.create(pooled(), withDirect)) {
            assertThat(a.notificationMode()).isEqualTo(StartupChecks.NotificationMode.LISTEN_DIRECT);
            Elector first = a.elector(lease, NO_OP);
            Leadership l = first.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            Elector second = b.elector(lease, NO_OP);
            Thread.sleep(1000); // denied; now sleeping until the expiry it was told (24 s), waiting for NOTIFY

            long released = System.nanoTime();
            first.close();
            Leadership taken = second.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            Duration took = Duration.ofNanos(System.nanoTime() - released);

            assertThat(taken.token()).isEqualTo(l.token() + 1);
            assertThat(took)
                    .as("woken by NOTIFY, far sooner than the 3 s retryPeriod")
                    .isLessThan(Duration.ofMillis(1000));
        }
    }

    @Test
    void aSessionPoolerKeepsLISTEN() {
        try (PgLease a = PgLease.create(
                dataSource(session.jdbcUrl("postgres")),
                config(Duration.ofMillis(500)).build())) {
            assertThat(a.notificationMode()).isEqualTo(StartupChecks.NotificationMode.LISTEN);
        }
    }

    @Test
    void serverSidePreparedStatementsThroughATransactionPoolerAreRefusedAtStart() {
        String url = transaction.jdbcUrl("postgres").replace("&prepareThreshold=0", "");

        assertThatThrownBy(() -> PgLease.create(
                        dataSource(url), config(Duration.ofMillis(500)).build()))
                .isInstanceOf(LeaseException.class)
                .hasMessageContaining("prepareThreshold is 5")
                .hasMessageContaining("Add prepareThreshold=0 to the JDBC URL")
                .extracting(e -> ((LeaseException) e).reason())
                .isEqualTo(LeaseException.Reason.UNSUPPORTED_POOLING);
    }

    @Test
    void aDirectDataSourceThatIsTransactionPooledTooIsRefusedAtStart() {
        LeaseConfig config =
                config(Duration.ofMillis(500)).directDataSource(pooled()).build();

        assertThatThrownBy(() -> PgLease.create(pooled(), config))
                .isInstanceOf(LeaseException.class)
                .hasMessageContaining("LeaseConfig.directDataSource goes through a transaction pooler too")
                .extracting(e -> ((LeaseException) e).reason())
                .isEqualTo(LeaseException.Reason.UNSUPPORTED_POOLING);
    }

    @Test
    void theWatchCommandRefusesATransactionPoolerInsteadOfWaitingForever() {
        java.io.StringWriter err = new java.io.StringWriter();
        long start = System.nanoTime();

        int code = dev.pglease.cli.Main.commandLine()
                .setErr(new java.io.PrintWriter(err))
                .execute("watch", "--jdbc-url", transaction.jdbcUrl("postgres"), "--schema", schema, "--for", "30s");

        assertThat(code).isEqualTo(1);
        assertThat(err.toString())
                .contains("goes through a transaction pooler")
                .contains("LISTEN there never delivers");
        assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
    }

    /** A listener that does nothing: these tests read the elector's state. */
    static final class LeaseListener implements LeaderListener {
        @Override
        public void onElected(Leadership leadership) {}

        @Override
        public void onRevoked(Leadership leadership) {}
    }
}
