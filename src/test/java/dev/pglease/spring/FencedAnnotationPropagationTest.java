package dev.pglease.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseObserver;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import javax.sql.DataSource;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.jdbc.autoconfigure.DataSourceAutoConfiguration;
import org.springframework.boot.jdbc.autoconfigure.DataSourceTransactionManagerAutoConfiguration;
import org.springframework.boot.jdbc.autoconfigure.JdbcTemplateAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.boot.transaction.autoconfigure.TransactionAutoConfiguration;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.annotation.Primary;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.datasource.DataSourceTransactionManager;
import org.springframework.transaction.annotation.Isolation;
import org.springframework.transaction.annotation.Propagation;
import org.springframework.transaction.annotation.Transactional;

/**
 * {@code @Fenced} on a method that carries its own {@code @Transactional} attributes: the documentation promises that
 * "the method runs in a Spring transaction (the caller's {@code @Transactional} one, or a new one) that is fenced
 * before the method body runs", that {@code REQUIRES_NEW} "fences its own new transaction on another connection",
 * and that no write commits under a token after a later token was granted.
 *
 * <p>Each case: the holder's election thread stalls right after a renewal (a pause), the fenced method is called,
 * and inside it, before it writes, it waits until a standby has been granted the lease with a later token. A write
 * of the method that then commits is a write committed under the old token after a later token was granted.
 *
 * <p>On main the {@code @Fenced} advice runs outside Spring's transaction advice: it opens (or joins) a
 * {@code REQUIRED} transaction of the primary transaction manager and fences that one; the method's own
 * {@code @Transactional} then suspends it ({@code REQUIRES_NEW}, {@code NOT_SUPPORTED}) or opens one on another data
 * source, and the body writes there unfenced. The default propagation (the control) holds.
 */
class FencedAnnotationPropagationTest {

    /** Stalls the election thread at its next renewal until released: the holder's process pauses. */
    static final class Pause implements LeaseObserver {
        private volatile boolean armed;
        private volatile CountDownLatch paused = new CountDownLatch(1);
        private final CountDownLatch resume = new CountDownLatch(1);

        void pauseAtNextRenewal() throws InterruptedException {
            armed = true;
            assertThat(paused.await(10, TimeUnit.SECONDS))
                    .as("the election thread paused")
                    .isTrue();
        }

        void resume() {
            armed = false;
            resume.countDown();
        }

        @Override
        public void renewed(String leaseName, long token, Duration latency) {
            if (armed) {
                armed = false;
                paused.countDown();
                try {
                    resume.await(30, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    /** The application's service: each method waits for the successor, then writes. */
    public static class Charges {
        private final JdbcTemplate jdbc;
        private final JdbcTemplate secondJdbc;
        private volatile Runnable beforeWrite = () -> {};

        /** What to do before the write (called through the proxy, so it reaches the target). */
        public void beforeWrite(Runnable action) {
            this.beforeWrite = action;
        }

        public Charges(JdbcTemplate jdbc, JdbcTemplate secondJdbc) {
            this.jdbc = jdbc;
            this.secondJdbc = secondJdbc;
        }

        @Transactional
        @Fenced
        public void chargeInTheDefaultPropagation(int order) {
            beforeWrite.run();
            jdbc.update("INSERT INTO charges (order_id) VALUES (?)", order);
        }

        @Transactional(propagation = Propagation.REQUIRES_NEW)
        @Fenced
        public void chargeInANewTransaction(int order) {
            beforeWrite.run();
            jdbc.update("INSERT INTO charges (order_id) VALUES (?)", order);
        }

        @Transactional(propagation = Propagation.NOT_SUPPORTED)
        @Fenced
        public void chargeOutsideATransaction(int order) {
            beforeWrite.run();
            jdbc.update("INSERT INTO charges (order_id) VALUES (?)", order);
        }

        @Transactional(isolation = Isolation.SERIALIZABLE)
        @Fenced
        public String isolationOfASerializableFencedMethod() {
            return jdbc.queryForObject("SELECT current_setting('transaction_isolation')", String.class);
        }

        @Transactional(transactionManager = "secondTransactionManager")
        @Fenced
        public void chargeThroughTheSecondDataSource(int order) {
            beforeWrite.run();
            secondJdbc.update("INSERT INTO charges (order_id) VALUES (?)", order);
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class App {
        @Bean
        Charges charges(JdbcTemplate jdbc) {
            return new Charges(jdbc, jdbc);
        }
    }

    /** Two data sources on the same database, each with its own transaction manager; the first is the primary. */
    @Configuration(proxyBeanMethods = false)
    static class TwoDataSources {

        @Bean
        @Primary
        DataSource dataSource() {
            return TestDatabase.dataSource("currentSchema=" + schema);
        }

        @Bean
        DataSource secondDataSource() {
            return TestDatabase.dataSource("currentSchema=" + schema);
        }

        @Bean
        @Primary
        DataSourceTransactionManager transactionManager(DataSource dataSource) {
            return new DataSourceTransactionManager(dataSource);
        }

        @Bean
        DataSourceTransactionManager secondTransactionManager() {
            return new DataSourceTransactionManager(secondDataSource());
        }

        @Bean
        @Primary
        JdbcTemplate jdbcTemplate(DataSource dataSource) {
            return new JdbcTemplate(dataSource);
        }

        @Bean
        Charges charges(JdbcTemplate jdbc) {
            return new Charges(jdbc, new JdbcTemplate(secondDataSource()));
        }

        static String schema;
    }

    private static ApplicationContextRunner runner(String schema, String lease, Pause pause) {
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
                        "pglease.retry-period=500ms",
                        "pglease.shedlock.enabled=false")
                .withBean(LeaseObserver.class, () -> pause);
    }

    private static String freshSchemaWithCharges() {
        String schema = TestDatabase.freshSchema();
        TestDatabase.execute("CREATE TABLE " + schema + ".charges (order_id int PRIMARY KEY, "
                + "committed_at timestamptz NOT NULL DEFAULT clock_timestamp())");
        return schema;
    }

    /** A standby of another process: its grant comes with the next token. */
    private static final class Successor implements AutoCloseable {
        final PgLease pglease;
        final Elector elector;
        final AtomicLong grantedAt = new AtomicLong();

        Successor(String schema, String lease) {
            pglease = PgLease.create(
                    TestDatabase.dataSource(),
                    LeaseConfig.builder()
                            .schema(schema)
                            .holderLabel("successor")
                            .leaseDuration(Duration.ofSeconds(2))
                            .renewDeadline(Duration.ofMillis(1500))
                            .retryPeriod(Duration.ofMillis(500))
                            .build());
            elector = pglease.elector(lease, new LeaderListener() {
                @Override
                public void onElected(Leadership leadership) {}

                @Override
                public void onRevoked(Leadership leadership) {}
            });
        }

        /** Waits (on the fenced method's thread, as a pause would) until the successor holds a later token. */
        Leadership awaitGrant(long after) {
            try {
                Leadership l = elector.awaitLeadership(Duration.ofSeconds(15)).orElseThrow();
                assertThat(l.token()).isGreaterThan(after);
                return l;
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public void close() {
            elector.close();
            pglease.close();
        }
    }

    private static boolean committed(String schema, int order) {
        return new JdbcTemplate(TestDatabase.dataSource())
                        .queryForObject(
                                "SELECT count(*) FROM " + schema + ".charges WHERE order_id = ?", Integer.class, order)
                > 0;
    }

    private interface Call {
        void charge(Charges charges, int order);
    }

    private static void noWriteCommitsAfterTheSuccessorsGrant(
            ApplicationContextRunner runner, String schema, String lease, Pause pause, Call call) {
        runner.run(context -> {
            assertThat(context).hasNotFailed();
            Leadership mine = context.getBean(LeaderElection.class)
                    .awaitLeadership(Duration.ofSeconds(10))
                    .orElseThrow();
            Charges charges = context.getBean(Charges.class);
            try (Successor successor = new Successor(schema, lease)) {
                charges.beforeWrite(() -> successor.awaitGrant(mine.token()));
                pause.pauseAtNextRenewal();
                Throwable outcome;
                try {
                    outcome = catchThrowable(() -> call.charge(charges, 1));
                } finally {
                    pause.resume();
                }
                assertThat(committed(schema, 1))
                        .as(
                                "the write of the @Fenced method committed under token %d after the successor was "
                                        + "granted a later token (outcome of the call: %s)",
                                mine.token(), outcome)
                        .isFalse();
            }
        });
    }

    /** The control: the same race with the default propagation is caught (this one holds). */
    @Test
    void aFencedMethodInTheDefaultPropagationCommitsNothingAfterALaterTokenWasGranted() {
        String schema = freshSchemaWithCharges();
        Pause pause = new Pause();
        noWriteCommitsAfterTheSuccessorsGrant(
                runner(schema, "pay", pause).withUserConfiguration(App.class),
                schema,
                "pay",
                pause,
                Charges::chargeInTheDefaultPropagation);
    }

    @Test
    void aFencedMethodInItsOwnRequiresNewTransactionCommitsNothingAfterALaterTokenWasGranted() {
        String schema = freshSchemaWithCharges();
        Pause pause = new Pause();
        noWriteCommitsAfterTheSuccessorsGrant(
                runner(schema, "pay", pause).withUserConfiguration(App.class),
                schema,
                "pay",
                pause,
                Charges::chargeInANewTransaction);
    }

    @Test
    void aFencedMethodMarkedNotSupportedCommitsNothingAfterALaterTokenWasGranted() {
        String schema = freshSchemaWithCharges();
        Pause pause = new Pause();
        noWriteCommitsAfterTheSuccessorsGrant(
                runner(schema, "pay", pause).withUserConfiguration(App.class),
                schema,
                "pay",
                pause,
                Charges::chargeOutsideATransaction);
    }

    @Test
    void aFencedMethodOfAnotherTransactionManagerCommitsNothingAfterALaterTokenWasGranted() {
        String schema = freshSchemaWithCharges();
        TwoDataSources.schema = schema;
        Pause pause = new Pause();
        noWriteCommitsAfterTheSuccessorsGrant(
                runner(schema, "pay", pause).withUserConfiguration(TwoDataSources.class),
                schema,
                "pay",
                pause,
                Charges::chargeThroughTheSecondDataSource);
    }

    /**
     * The method's own transaction attributes are those the body runs with: a {@code SERIALIZABLE} fenced method runs
     * serializable (on main it runs in the {@code REQUIRED}, default-isolation transaction the fence opened, and its
     * {@code @Transactional} only joins it).
     */
    @Test
    void aFencedMethodRunsWithItsOwnTransactionAttributes() {
        String schema = freshSchemaWithCharges();
        Pause pause = new Pause();
        runner(schema, "pay", pause).withUserConfiguration(App.class).run(context -> {
            assertThat(context).hasNotFailed();
            context.getBean(LeaderElection.class)
                    .awaitLeadership(Duration.ofSeconds(10))
                    .orElseThrow();
            assertThat(context.getBean(Charges.class).isolationOfASerializableFencedMethod())
                    .as("transaction_isolation inside @Transactional(isolation = SERIALIZABLE) @Fenced")
                    .isEqualTo("serializable");
        });
    }
}
