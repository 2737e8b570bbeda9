package dev.pglease.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.jdbc.autoconfigure.DataSourceAutoConfiguration;
import org.springframework.boot.jdbc.autoconfigure.DataSourceTransactionManagerAutoConfiguration;
import org.springframework.boot.jdbc.autoconfigure.JdbcTemplateAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.boot.transaction.autoconfigure.TransactionAutoConfiguration;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.datasource.DataSourceTransactionManager;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.transaction.annotation.Transactional;

/**
 * Fenced writes inside Spring transactions ({@link DataSourceTransactionManager}, {@link JdbcTemplate}): the fence is
 * taken on the Spring transaction's own connection, so the application's writes commit only with a valid grant,
 * and a stale or lost lease rolls back the whole Spring transaction, including writes made before the fence.
 */
class SpringFencingTest {

    /** The application's service, written as the documentation shows. */
    static class Payments {
        private final JdbcTemplate jdbc;
        private final FencedTransactionTemplate fenced;
        private volatile Runnable beforeReturn = () -> {};

        /** What to do after the fenced write, before the transaction commits (through the proxy, to the target). */
        public void beforeReturn(Runnable action) {
            this.beforeReturn = action;
        }

        Payments(JdbcTemplate jdbc, FencedTransactionTemplate fenced) {
            this.jdbc = jdbc;
            this.fenced = fenced;
        }

        // tag::spring-fenced[]
        @Transactional
        @Fenced
        public void charge(int order) {
            // Runs in the Spring transaction, fenced by this application's lease: commits only while it leads.
            jdbc.update("INSERT INTO charges (order_id) VALUES (?)", order);
        }
        // end::spring-fenced[]

        @Transactional
        public void auditThenCharge(int order) {
            jdbc.update("INSERT INTO audit (order_id) VALUES (?)", order);
            fenced.fenceCurrentTransaction();
            jdbc.update("INSERT INTO charges (order_id) VALUES (?)", order);
            beforeReturn.run();
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class App {
        @Bean
        Payments payments(JdbcTemplate jdbc, FencedTransactionTemplate fenced) {
            return new Payments(jdbc, fenced);
        }
    }

    private static ApplicationContextRunner runner(String schema, String lease) {
        TestDatabase.execute("CREATE TABLE IF NOT EXISTS " + schema + ".charges (order_id int PRIMARY KEY)");
        TestDatabase.execute("CREATE TABLE IF NOT EXISTS " + schema + ".audit (order_id int PRIMARY KEY)");
        return new ApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(
                        DataSourceAutoConfiguration.class,
                        DataSourceTransactionManagerAutoConfiguration.class,
                        JdbcTemplateAutoConfiguration.class,
                        TransactionAutoConfiguration.class,
                        PgLeaseAutoConfiguration.class))
                .withPropertyValues(
                        "spring.datasource.url=" + TestDatabase.jdbcUrl()
                                + (TestDatabase.jdbcUrl().contains("?") ? "&" : "?") + "currentSchema=" + schema,
                        "pglease.schema=" + schema,
                        "pglease.election.lease-name=" + lease,
                        "pglease.lease-duration=2s",
                        "pglease.renew-deadline=1500ms",
                        "pglease.retry-period=500ms")
                .withUserConfiguration(App.class);
    }

    private static List<Integer> rows(String schema, String table) {
        return new JdbcTemplate(TestDatabase.dataSource())
                .queryForList("SELECT order_id FROM " + schema + "." + table + " ORDER BY 1", Integer.class);
    }

    @Test
    void theLeadersFencedWriteCommitsWithTheSpringTransaction() {
        String schema = TestDatabase.freshSchema();
        runner(schema, "pay").run(context -> {
            assertThat(context).hasNotFailed();
            assertThat(context.getBean(PlatformTransactionManager.class))
                    .isInstanceOf(DataSourceTransactionManager.class);
            context.getBean(LeaderElection.class)
                    .awaitLeadership(Duration.ofSeconds(10))
                    .orElseThrow();
            Payments payments = context.getBean(Payments.class);
            payments.charge(1);
            payments.auditThenCharge(2);
            assertThat(rows(schema, "charges")).containsExactly(1, 2);
            assertThat(rows(schema, "audit")).containsExactly(2);
            assertThat(context.getBean(LeaderElection.class).workInFlight()).isZero();
        });
    }

    @Test
    void onAStandbyTheFencedMethodIsRefusedAndNothingCommits() throws Exception {
        String schema = TestDatabase.freshSchema();
        try (PgLease other = PgLease.create(
                        TestDatabase.dataSource(),
                        LeaseConfig.builder().schema(schema).build());
                var elector = other.elector("pay", new dev.pglease.LeaderListener() {
                    @Override
                    public void onElected(Leadership leadership) {}

                    @Override
                    public void onRevoked(Leadership leadership) {}
                })) {
            elector.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            runner(schema, "pay").run(context -> {
                Payments payments = context.getBean(Payments.class);
                Throwable t = catchThrowable(() -> payments.auditThenCharge(3));
                assertThat(t).isInstanceOf(LeaseException.class);
                assertThat(((LeaseException) t).reason()).isEqualTo(LeaseException.Reason.LEASE_LOST);
                assertThat(rows(schema, "audit"))
                        .as("the write before the fence rolled back too")
                        .isEmpty();
                assertThat(catchThrowable(() -> payments.charge(3))).isInstanceOf(LeaseException.class);
                assertThat(rows(schema, "charges")).isEmpty();
            });
        }
    }

    @Test
    void aGrantTheDatabaseNoLongerListsForThisLoginRollsBackTheWholeSpringTransaction() {
        String schema = TestDatabase.freshSchema();
        // renewals 20 s apart: the holder's next renewal, which would tell it the lease moved, comes after the fence
        runner(schema, "pay")
                .withPropertyValues(
                        "pglease.lease-duration=60s", "pglease.renew-deadline=40s", "pglease.retry-period=20s")
                .run(context -> {
                    Leadership leadership = context.getBean(LeaderElection.class)
                            .awaitLeadership(Duration.ofSeconds(10))
                            .orElseThrow();
                    FencedTransactionTemplate fenced = context.getBean(FencedTransactionTemplate.class);
                    JdbcTemplate jdbc = context.getBean(JdbcTemplate.class);
                    // The database stops listing this login as the holder while the holder's local deadline has not
                    // yet passed and its row still names it with its token: what the holder reads on a notice (its own
                    // acquire's, handled whenever the listener gets to it) tells it nothing, so only the fence can
                    // refuse. The change is made without its NOTIFY (triggers off for that session).
                    TestDatabase.execute("SET session_replication_role = replica; UPDATE " + schema + ".leases "
                            + "SET holder_role = 'someone_else' WHERE name = 'pay'");
                    Throwable t = catchThrowable(() -> fenced.execute(leadership, status -> {
                        return jdbc.update("INSERT INTO charges (order_id) VALUES (4)");
                    }));
                    assertThat(t).isInstanceOf(LeaseException.class);
                    assertThat(((LeaseException) t).reason()).isEqualTo(LeaseException.Reason.STALE_TOKEN);
                    assertThat(rows(schema, "charges")).isEmpty();
                });
    }

    /**
     * The leader's transaction is fenced and has written; then its renewals stop getting through (another session
     * holds the lease row, as a cut-off or paused leader would see it) while it waits before commit. Its local
     * deadline passes: the commit is refused and nothing of the transaction commits, whether the holder then leads
     * again with the same token or a later one.
     */
    @Test
    void aLateCommitAfterTheDeadlineIsRolledBack() throws Exception {
        String schema = TestDatabase.freshSchema();
        runner(schema, "pay").run(context -> {
            LeaderElection election = context.getBean(LeaderElection.class);
            Leadership leadership =
                    election.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            Payments payments = context.getBean(Payments.class);
            try (Connection blocker = TestDatabase.dataSource().getConnection()) {
                payments.beforeReturn(() -> {
                    try {
                        blocker.setAutoCommit(false);
                        try (Statement s = blocker.createStatement()) {
                            // blocks the holder's renewals (no-key update vs no-key update) but not its fence lock
                            s.execute("SELECT 1 FROM " + schema + ".leases WHERE name = 'pay' FOR NO KEY UPDATE");
                        }
                        long end = System.nanoTime() + Duration.ofSeconds(3).toNanos();
                        while (leadership.isValid() && System.nanoTime() < end) {
                            Thread.sleep(10);
                        }
                        assertThat(leadership.isValid())
                                .as("the deadline passed while paused")
                                .isFalse();
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                });
                Throwable t = catchThrowable(() -> payments.auditThenCharge(5));
                blocker.rollback();
                assertThat(t).as("the late commit is refused").isNotNull();
                assertThat(rows(schema, "charges"))
                        .as("the late write did not commit")
                        .isEmpty();
                assertThat(rows(schema, "audit")).isEmpty();
            }
            // the holder leads again: with the same token when its renewal after the step-down was answered in time
            // (the lease never expired in the database, nobody else held it), or with a later token
            Leadership next = election.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            assertThat(next).isNotSameAs(leadership);
            assertThat(next.token()).isGreaterThanOrEqualTo(leadership.token());
            assertThat(leadership.isValid())
                    .as("the leadership that stepped down stays ended")
                    .isFalse();
            assertThat(rows(schema, "charges"))
                    .as("the late write never commits later")
                    .isEmpty();
        });
    }
}
