package dev.pglease.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.FencingContext;
import dev.pglease.LeaseException;
import dev.pglease.LeaseGrant;
import dev.pglease.LeaseLock;
import dev.pglease.LeaseObserver;
import dev.pglease.security.HostileSchema;
import dev.pglease.shedlock.PgLeaseLockProvider;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import net.javacrumbs.shedlock.core.LockConfiguration;
import net.javacrumbs.shedlock.core.SimpleLock;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.jdbc.autoconfigure.DataSourceAutoConfiguration;
import org.springframework.boot.jdbc.autoconfigure.DataSourceTransactionManagerAutoConfiguration;
import org.springframework.boot.jdbc.autoconfigure.JdbcTemplateAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.boot.transaction.autoconfigure.TransactionAutoConfiguration;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.transaction.TransactionDefinition;
import org.springframework.transaction.TransactionSystemException;
import org.springframework.transaction.annotation.Transactional;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * What a Spring application sees when its process loses the lease in the middle of a fenced transaction (its
 * election thread stalls, as in a pause, so the grant's deadline passes while the transaction runs): a
 * {@link LeaseException} {@code LEASE_LOST} that a {@code catch (LeaseException e)} catches, never Spring's
 * "JDBC rollback failed", and nothing of the transaction committed. Also: a write made after a rollback to the
 * savepoint that held the fence is fenced again before commit, and a fenced method is fenced with the grant the
 * calling code runs under.
 */
class SpringLeaseLossTest {

    private static HostileSchema h;
    private static String app;

    @BeforeAll
    static void setUp() {
        h = HostileSchema.create();
        app = h.schema + "_app";
        HostileSchema.superuser("CREATE SCHEMA " + app);
        HostileSchema.superuser("CREATE TABLE " + app + ".charges (order_id int PRIMARY KEY, token bigint)");
        HostileSchema.superuser("GRANT USAGE ON SCHEMA " + app + " TO " + h.candA);
        HostileSchema.superuser("GRANT SELECT, INSERT ON " + app + ".charges TO " + h.candA);
    }

    /** Stalls the election thread at its next renewal until released: the holder's process pauses. */
    static final class Pause implements LeaseObserver {
        private volatile boolean armed;
        private volatile CountDownLatch paused = new CountDownLatch(1);
        private volatile CountDownLatch resume = new CountDownLatch(1);

        void pauseAtNextRenewal() throws InterruptedException {
            paused = new CountDownLatch(1);
            resume = new CountDownLatch(1);
            armed = true;
            assertThat(paused.await(5, TimeUnit.SECONDS))
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
                    resume.await(20, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    /** The application's service. */
    public static class Charges {
        private final JdbcTemplate jdbc;

        public Charges(JdbcTemplate jdbc) {
            this.jdbc = jdbc;
        }

        /** Charges {@code order}, waits until the grant it runs under has lost its deadline, then charges again. */
        @Fenced
        public void chargeTwiceAcrossTheDeadline(int order, boolean writeAfter) {
            LeaseGrant grant = FencingContext.current().orElseThrow();
            jdbc.update("INSERT INTO charges (order_id, token) VALUES (?, ?)", order, grant.token());
            waitPastTheDeadline(grant);
            if (writeAfter) {
                jdbc.update("INSERT INTO charges (order_id, token) VALUES (?, ?)", order + 1, grant.token());
            }
        }

        /** Writes stamped with the fencing token of the grant that fenced the transaction. */
        @Fenced
        public LeaseGrant charge(int order) {
            jdbc.update("INSERT INTO charges (order_id, token) VALUES (?, ?)", order, FencingContext.currentToken());
            return FencingContext.current().orElseThrow();
        }

        // tag::spring-fenced-token[]
        @Fenced
        public void chargeStamped(int order) {
            // The token of the grant that fenced this transaction, stamped on the row it writes.
            long token = FencingContext.currentToken();
            jdbc.update("INSERT INTO charges (order_id, token) VALUES (?, ?)", order, token);
        }
        // end::spring-fenced-token[]

        @Transactional
        @Fenced
        public LeaseGrant chargeTransactional(int order) {
            return charge(order);
        }
    }

    /** A leader-only job that charges through the fenced service. */
    public static class Job {
        private final Charges charges;

        public Job(Charges charges) {
            this.charges = charges;
        }

        @LeaderOnly
        public LeaseGrant[] run(int order) {
            return new LeaseGrant[] {FencingContext.current().orElseThrow(), charges.charge(order)};
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class App {
        @Bean
        Charges charges(JdbcTemplate jdbc) {
            return new Charges(jdbc);
        }

        @Bean
        Job job(Charges charges) {
            return new Job(charges);
        }
    }

    private static ApplicationContextRunner runner(String lease, Pause pause) {
        return new ApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(
                        DataSourceAutoConfiguration.class,
                        DataSourceTransactionManagerAutoConfiguration.class,
                        JdbcTemplateAutoConfiguration.class,
                        TransactionAutoConfiguration.class,
                        PgLeaseAutoConfiguration.class))
                .withPropertyValues(
                        "spring.datasource.url=" + h.url(h.candA) + "&currentSchema=" + app,
                        "pglease.schema=" + h.schema,
                        "pglease.election.lease-name=" + lease,
                        "pglease.lease-duration=3s",
                        "pglease.renew-deadline=2s",
                        "pglease.retry-period=500ms")
                .withBean(LeaseObserver.class, () -> pause)
                .withUserConfiguration(App.class);
    }

    private static void waitPastTheDeadline(LeaseGrant grant) {
        try {
            while (grant.isValid()) {
                Thread.sleep(10);
            }
            Thread.sleep(400); // past the client-side abort's grace and the server's idle bound
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static int charged(int order) throws Exception {
        return Integer.parseInt(HostileSchema.query(
                null,
                "SELECT count(*) FROM " + app + ".charges WHERE order_id IN (" + order + ", " + (order + 1) + ")"));
    }

    @ParameterizedTest(name = "a statement after the deadline: {0}")
    @ValueSource(booleans = {true, false})
    void aFencedMethodWhoseLeaseIsLostWhileItRunsThrowsLeaseLostAndCommitsNothing(boolean writeAfter) throws Exception {
        Pause pause = new Pause();
        int order = writeAfter ? 100 : 200;
        runner("lost-" + writeAfter, pause).run(context -> {
            context.getBean(LeaderElection.class)
                    .awaitLeadership(Duration.ofSeconds(10))
                    .orElseThrow();
            Charges charges = context.getBean(Charges.class);
            pause.pauseAtNextRenewal();
            Throwable t;
            try {
                t = catchThrowable(() -> charges.chargeTwiceAcrossTheDeadline(order, writeAfter));
            } finally {
                pause.resume();
            }
            assertThat(t)
                    .as("what the fenced method threw")
                    .isInstanceOfSatisfying(
                            LeaseException.class,
                            e -> assertThat(e.reason()).isEqualTo(LeaseException.Reason.LEASE_LOST));
            assertThat(charged(order)).as("rows committed").isZero();
        });
    }

    @Test
    void theSameThroughFencedTransactionTemplateWithAGrantIsALeaseExceptionToo() throws Exception {
        Pause pause = new Pause();
        runner("lost-template", pause).run(context -> {
            LeaseGrant leadership = context.getBean(LeaderElection.class)
                    .awaitLeadership(Duration.ofSeconds(10))
                    .orElseThrow();
            FencedTransactionTemplate fenced = context.getBean(FencedTransactionTemplate.class);
            JdbcTemplate jdbc = context.getBean(JdbcTemplate.class);
            pause.pauseAtNextRenewal();
            Throwable t;
            try {
                t = catchThrowable(() -> fenced.execute(leadership, status -> {
                    jdbc.update("INSERT INTO charges (order_id, token) VALUES (300, ?)", leadership.token());
                    waitPastTheDeadline(leadership);
                    return jdbc.update("INSERT INTO charges (order_id, token) VALUES (301, ?)", leadership.token());
                }));
            } finally {
                pause.resume();
            }
            assertThat(t).isInstanceOf(LeaseException.class);
            assertThat(((LeaseException) t).reason()).isEqualTo(LeaseException.Reason.LEASE_LOST);
            assertThat(charged(300)).isZero();
        });
    }

    @Test
    void whenAnOuterTransactionEndsItTheRollbackFailureCarriesTheLeaseException() throws Exception {
        Pause pause = new Pause();
        runner("lost-outer", pause).run(context -> {
            context.getBean(LeaderElection.class)
                    .awaitLeadership(Duration.ofSeconds(10))
                    .orElseThrow();
            Charges charges = context.getBean(Charges.class);
            TransactionTemplate outer = new TransactionTemplate(context.getBean(PlatformTransactionManager.class));
            pause.pauseAtNextRenewal();
            Throwable t;
            try {
                t = catchThrowable(
                        () -> outer.executeWithoutResult(s -> charges.chargeTwiceAcrossTheDeadline(400, true)));
            } finally {
                pause.resume();
            }
            assertThat(t)
                    .as("the outer boundary's rollback fails on the dead connection")
                    .isInstanceOfSatisfying(
                            TransactionSystemException.class,
                            e -> assertThat(e.contains(LeaseException.class))
                                    .as("the rollback failure carries the LeaseException: %s", e)
                                    .isTrue());
            assertThat(charged(400)).isZero();
        });
    }

    /**
     * The fence was taken inside a savepoint that was rolled back (which released its row lock), then the
     * transaction writes without another fenced call; meanwhile an operator moved the lease on. The commit fences
     * again, finds the token stale and rolls everything back.
     */
    @Test
    void aWriteAfterARollbackToTheSavepointThatHeldTheFenceIsFencedAgainBeforeCommit() throws Exception {
        Pause pause = new Pause();
        String lease = "savepoint";
        runner(lease, pause).run(context -> {
            context.getBean(LeaderElection.class)
                    .awaitLeadership(Duration.ofSeconds(10))
                    .orElseThrow();
            FencedTransactionTemplate fenced = context.getBean(FencedTransactionTemplate.class);
            JdbcTemplate jdbc = context.getBean(JdbcTemplate.class);
            PlatformTransactionManager tm = context.getBean(PlatformTransactionManager.class);
            TransactionTemplate nested = new TransactionTemplate(tm);
            nested.setPropagationBehavior(TransactionDefinition.PROPAGATION_NESTED);
            pause.pauseAtNextRenewal();
            Throwable t;
            try {
                t = catchThrowable(() -> new TransactionTemplate(tm).executeWithoutResult(outer -> {
                    nested.executeWithoutResult(item -> {
                        fenced.fenceCurrentTransaction();
                        item.setRollbackOnly();
                    });
                    jdbc.update("INSERT INTO charges (order_id, token) VALUES (500, 0)");
                    try {
                        // not held: the force release does not wait for this transaction
                        HostileSchema.query(h.operator, "SELECT " + h.schema + ".force_release('" + lease + "')");
                    } catch (Exception e) {
                        throw new IllegalStateException(e);
                    }
                }));
            } finally {
                pause.resume();
            }
            assertThat(t)
                    .as("the commit's fence refused the token the force release made stale")
                    .isInstanceOfSatisfying(
                            LeaseException.class,
                            e -> assertThat(e.reason()).isEqualTo(LeaseException.Reason.STALE_TOKEN));
            assertThat(charged(500)).isZero();
        });
    }

    @Test
    void aFencedMethodIsFencedWithTheGrantTheCallingCodeRunsUnder() throws Exception {
        runner("grants", new Pause()).run(context -> {
            LeaseGrant leadership = context.getBean(LeaderElection.class)
                    .awaitLeadership(Duration.ofSeconds(10))
                    .orElseThrow();
            Charges charges = context.getBean(Charges.class);
            assertThat(charges.charge(600))
                    .as("no grant around: the election's")
                    .isEqualTo(leadership);
            assertThat(charges.chargeTransactional(601)).isEqualTo(leadership);
            charges.chargeStamped(604);
            assertThat(HostileSchema.query(null, "SELECT token FROM " + app + ".charges WHERE order_id = 604"))
                    .isEqualTo(String.valueOf(leadership.token()));
            LeaseGrant[] fromJob = context.getBean(Job.class).run(602);
            assertThat(fromJob[1]).as("inside @LeaderOnly: its leadership").isSameAs(fromJob[0]);
            assertThat(FencingContext.current()).as("nothing left bound").isEmpty();

            // a ShedLock task's lock fences, whether or not this process leads
            PgLeaseLockProvider locks = context.getBean(PgLeaseLockProvider.class);
            SimpleLock taken = locks.lock(
                            new LockConfiguration(Instant.now(), "nightly", Duration.ofSeconds(30), Duration.ZERO))
                    .orElseThrow();
            try {
                LeaseLock lock = FencingContext.current(LeaseLock.class).orElseThrow();
                assertThat(charges.charge(603)).isSameAs(lock);
                assertThat(HostileSchema.query(null, "SELECT token FROM " + app + ".charges WHERE order_id = 603"))
                        .as("the row carries the lock's token")
                        .isEqualTo(String.valueOf(lock.token()));
            } finally {
                taken.unlock();
            }
            assertThat(FencingContext.current()).isEmpty();
            assertThat(charged(600)).isEqualTo(2); // 600 and 601
        });
    }
}
