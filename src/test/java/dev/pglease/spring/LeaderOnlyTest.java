package dev.pglease.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.awaitility.Awaitility.await;

import dev.pglease.Leadership;
import dev.pglease.LeaseException;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.springframework.aop.support.AopUtils;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.scheduling.annotation.EnableScheduling;
import org.springframework.scheduling.annotation.Scheduled;

/** {@link LeaderOnly} methods, scheduled ones included, on two application nodes that share one lease. */
class LeaderOnlyTest {

    /** An application's jobs. */
    public static class Jobs {
        private final List<Long> runs = new CopyOnWriteArrayList<>();

        /** Tokens of the runs of {@link #tick()}. */
        public List<Long> runs() {
            return runs;
        }

        @Scheduled(fixedDelay = 50)
        @LeaderOnly
        public void tick() {
            runs.add(LeaderOnlyBeanPostProcessor.currentLeadership()
                    .map(Leadership::token)
                    .orElseThrow());
        }

        @LeaderOnly
        public Optional<String> report() {
            return Optional.of("report");
        }

        @LeaderOnly
        public String mustLead() {
            return "done";
        }

        public String anyNode() {
            return "any";
        }
    }

    /** Every public method leader-only. */
    @LeaderOnly
    public static class Exporter {
        public String export() {
            return "exported";
        }
    }

    @Configuration(proxyBeanMethods = false)
    @EnableScheduling
    static class JobsConfig {
        @Bean
        Jobs jobs() {
            return new Jobs();
        }

        @Bean
        Exporter exporter() {
            return new Exporter();
        }
    }

    @Test
    void onlyTheLeaderRunsLeaderOnlyMethodsAndTheStandbyTakesOverOnShutdown() {
        String schema = PgLeaseAutoConfigurationTest.uniqueSchema("pgl");
        String lease = "jobs-" + System.nanoTime();
        PgLeaseAutoConfigurationTest.runner(schema, lease)
                .withUserConfiguration(JobsConfig.class)
                .run(a -> {
                    Jobs jobsA = a.getBean(Jobs.class);
                    assertThat(AopUtils.isAopProxy(jobsA)).isTrue();
                    long tokenA = a.getBean(LeaderElection.class)
                            .awaitLeadership(Duration.ofSeconds(10))
                            .orElseThrow()
                            .token();
                    PgLeaseAutoConfigurationTest.runner(schema, lease)
                            .withUserConfiguration(JobsConfig.class)
                            .run(b -> {
                                Jobs jobsB = b.getBean(Jobs.class);
                                await().atMost(5, TimeUnit.SECONDS)
                                        .until(() -> jobsA.runs().size() >= 3);
                                assertThat(jobsA.runs()).containsOnly(tokenA);
                                assertThat(jobsA.report()).contains("report");
                                assertThat(jobsA.mustLead()).isEqualTo("done");

                                assertThat(jobsB.runs())
                                        .as("the standby's scheduled job is skipped")
                                        .isEmpty();
                                assertThat(jobsB.report()).isEmpty();
                                assertThatThrownBy(jobsB::mustLead)
                                        .isInstanceOfSatisfying(
                                                LeaseException.class,
                                                e -> assertThat(e.reason())
                                                        .isEqualTo(LeaseException.Reason.LEASE_LOST));
                                assertThat(jobsB.anyNode()).isEqualTo("any");
                                assertThat(a.getBean(Exporter.class).export()).isEqualTo("exported");
                                assertThatThrownBy(
                                                () -> b.getBean(Exporter.class).export())
                                        .isInstanceOf(LeaseException.class);
                                assertThat(b.getBean(Exporter.class).toString())
                                        .as("Object methods are not guarded")
                                        .isNotNull();

                                // Node A shuts down: it releases the lease, B takes over well before the lease (6 s)
                                // would expire.
                                a.close();
                                int runsOfA = jobsA.runs().size();
                                await().atMost(3, TimeUnit.SECONDS)
                                        .until(() ->
                                                b.getBean(LeaderElection.class).isLeader());
                                await().atMost(5, TimeUnit.SECONDS)
                                        .until(() -> jobsB.runs().size() >= 3);
                                assertThat(jobsB.runs())
                                        .allSatisfy(t -> assertThat(t).isGreaterThan(tokenA));
                                assertThat(jobsA.runs()).hasSize(runsOfA);
                            });
                });
    }
}
