package dev.pglease.spring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.LeaseObserver;
import dev.pglease.security.HostileSchema;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.jdbc.autoconfigure.DataSourceAutoConfiguration;
import org.springframework.boot.jdbc.autoconfigure.DataSourceTransactionManagerAutoConfiguration;
import org.springframework.boot.jdbc.autoconfigure.JdbcTemplateAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.boot.transaction.autoconfigure.TransactionAutoConfiguration;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.transaction.TransactionDefinition;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * No write commits under a token after a later token was granted, whatever Spring propagation the fenced call
 * runs in. A batch runs in an outer transaction; its first item is fenced inside a savepoint
 * ({@code PROPAGATION_NESTED}) and rolled back to it (or, in the plain variant, the outer transaction is fenced
 * first); the next item's fenced call and write run with the propagation under test. Then the holder's process
 * pauses (its election thread stalls right after a renewal, well inside its deadline), an operator force-releases
 * the lease, and the transaction that holds the write commits. Either the force release waits for that
 * transaction, or the write is refused: a write committed after the force release completed is a violation.
 */
class PropagationFencingTest {

    private static HostileSchema h;
    private static String app;

    @BeforeAll
    static void setUp() {
        h = HostileSchema.create();
        app = h.schema + "_app";
        HostileSchema.superuser("CREATE SCHEMA " + app);
        HostileSchema.superuser("CREATE TABLE " + app + ".charges (order_id int PRIMARY KEY)");
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
                    resume.await(3, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    static Stream<Arguments> cases() {
        List<String> propagations = List.of("REQUIRED", "NESTED", "REQUIRES_NEW", "SUPPORTS", "MANDATORY");
        return Stream.of(true, false)
                .flatMap(rolledBack -> propagations.stream().map(p -> Arguments.of(p, rolledBack)));
    }

    @ParameterizedTest(name = "{0}, after an item rolled back to its savepoint: {1}")
    @MethodSource("cases")
    void noWriteCommitsUnderATokenAfterALaterTokenWasGranted(String propagation, boolean afterSavepointRollback)
            throws Exception {
        String lease = "pay-" + propagation.toLowerCase() + (afterSavepointRollback ? "-rb" : "");
        int order = Math.abs(lease.hashCode() % 1_000_000);
        Pause pause = new Pause();
        new ApplicationContextRunner()
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
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    context.getBean(LeaderElection.class)
                            .awaitLeadership(Duration.ofSeconds(10))
                            .orElseThrow();
                    FencedTransactionTemplate fenced = context.getBean(FencedTransactionTemplate.class);
                    JdbcTemplate jdbc = context.getBean(JdbcTemplate.class);
                    PlatformTransactionManager tm = context.getBean(PlatformTransactionManager.class);
                    AtomicLong commitStart = new AtomicLong();
                    CompletableFuture<Long> forceReleased = new CompletableFuture<>();
                    Runnable race = () -> {
                        startForceRelease(lease, forceReleased);
                        Awaitility.await("the force release completed or waits for a lock")
                                .atMost(Duration.ofSeconds(5))
                                .pollInterval(Duration.ofMillis(5))
                                .until(() -> forceReleased.isDone() || operatorWaitsOnALock());
                        commitStart.set(System.nanoTime());
                    };
                    boolean inner = propagation.equals("REQUIRES_NEW");
                    pause.pauseAtNextRenewal();
                    Throwable outcome = null;
                    try {
                        tx(tm, TransactionDefinition.PROPAGATION_REQUIRED).execute(outer -> {
                            if (afterSavepointRollback) {
                                tx(tm, TransactionDefinition.PROPAGATION_NESTED).execute(first -> {
                                    fenced.fenceCurrentTransaction();
                                    jdbc.update("INSERT INTO charges (order_id) VALUES (?)", order + 1);
                                    first.setRollbackOnly(); // the item failed: back to its savepoint
                                    return null;
                                });
                            } else {
                                fenced.fenceCurrentTransaction();
                            }
                            tx(tm, propagationOf(propagation)).execute(second -> {
                                fenced.fenceCurrentTransaction();
                                jdbc.update("INSERT INTO charges (order_id) VALUES (?)", order);
                                if (inner) {
                                    race.run();
                                }
                                return null;
                            });
                            if (!inner) {
                                race.run();
                            }
                            return null;
                        });
                    } catch (RuntimeException e) {
                        outcome = e;
                    } finally {
                        pause.resume();
                    }
                    long released = forceReleased.get(10, TimeUnit.SECONDS);
                    boolean committed = "1"
                            .equals(HostileSchema.query(
                                    null, "SELECT count(*) FROM " + app + ".charges WHERE order_id = " + order));
                    long lateMs = (commitStart.get() - released) / 1_000_000;
                    assertThat(committed && commitStart.get() > released)
                            .as(
                                    "the write of order %d (%s) committed %d ms after force_release completed (outcome: %s)",
                                    order, propagation, lateMs, outcome)
                            .isFalse();
                });
    }

    private static TransactionTemplate tx(PlatformTransactionManager tm, int propagation) {
        TransactionTemplate t = new TransactionTemplate(tm);
        t.setPropagationBehavior(propagation);
        return t;
    }

    private static int propagationOf(String name) {
        return switch (name) {
            case "REQUIRED" -> TransactionDefinition.PROPAGATION_REQUIRED;
            case "NESTED" -> TransactionDefinition.PROPAGATION_NESTED;
            case "REQUIRES_NEW" -> TransactionDefinition.PROPAGATION_REQUIRES_NEW;
            case "SUPPORTS" -> TransactionDefinition.PROPAGATION_SUPPORTS;
            case "MANDATORY" -> TransactionDefinition.PROPAGATION_MANDATORY;
            default -> throw new IllegalArgumentException(name);
        };
    }

    private static void startForceRelease(String lease, CompletableFuture<Long> done) {
        Thread t = new Thread(
                () -> {
                    try {
                        String token = HostileSchema.query(
                                h.operator, "SELECT " + h.schema + ".force_release('" + lease + "')");
                        assertThat(token)
                                .as("the operator's force_release of %s", lease)
                                .isNotNull();
                        done.complete(System.nanoTime());
                    } catch (Throwable e) {
                        done.completeExceptionally(e);
                    }
                },
                "operator-force-release");
        t.setDaemon(true);
        t.start();
    }

    private static boolean operatorWaitsOnALock() throws Exception {
        return !"0"
                .equals(HostileSchema.query(
                        null,
                        "SELECT count(*) FROM pg_stat_activity WHERE usename = '" + h.operator
                                + "' AND wait_event_type = 'Lock'"));
    }
}
