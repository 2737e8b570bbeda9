package dev.pglease.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.TestDatabase;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.jdbc.autoconfigure.DataSourceAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.event.EventListener;
import org.springframework.core.annotation.Order;

/**
 * The Spring documentation promises that "{@code LeaderListener} beans hear every grant and revocation" and that
 * "every grant and revocation is published as a {@code LeaseGrantedEvent} / {@code LeaseRevokedEvent}, after the
 * {@code LeaderListener} beans"; the README adds that nothing a listener throws stops the election. One listener
 * bean that throws must therefore not keep the others, or the events, from hearing a grant or a revocation: a
 * component that stops its leader-only work on {@code onRevoked} (or on {@code LeaseRevokedEvent}) would otherwise
 * go on working after the lease was lost.
 *
 * <p>On main {@code LeaderElection} calls the listener beans one after the other in one loop and publishes the event
 * after it: the first listener that throws ends the loop, so later listeners and the event never hear of it.
 */
class LeaderListenerIsolationTest {

    static final List<String> HEARD = new CopyOnWriteArrayList<>();

    @Configuration(proxyBeanMethods = false)
    static class App {
        @Bean
        @Order(1)
        LeaderListener auditThatThrows() {
            return new LeaderListener() {
                @Override
                public void onElected(Leadership leadership) {
                    HEARD.add("audit elected " + leadership.token());
                    throw new IllegalStateException("the audit store is down");
                }

                @Override
                public void onRevoked(Leadership leadership) {
                    HEARD.add("audit revoked " + leadership.token());
                    throw new IllegalStateException("the audit store is down");
                }
            };
        }

        @Bean
        @Order(2)
        LeaderListener worker() {
            return new LeaderListener() {
                @Override
                public void onElected(Leadership leadership) {
                    HEARD.add("worker elected " + leadership.token());
                }

                @Override
                public void onRevoked(Leadership leadership) {
                    HEARD.add("worker revoked " + leadership.token());
                }
            };
        }

        @Bean
        Events events() {
            return new Events();
        }
    }

    static class Events {
        @EventListener
        void granted(LeaseGrantedEvent event) {
            HEARD.add("event granted " + event.leadership().token());
        }

        @EventListener
        void revoked(LeaseRevokedEvent event) {
            HEARD.add("event revoked " + event.leadership().token());
        }
    }

    @Test
    void aThrowingListenerBeanDoesNotKeepTheOtherListenersOrTheEventsFromHearingAGrantOrARevocation() {
        String schema = TestDatabase.freshSchema();
        HEARD.clear();
        new ApplicationContextRunner()
                .withConfiguration(
                        AutoConfigurations.of(DataSourceAutoConfiguration.class, PgLeaseAutoConfiguration.class))
                .withPropertyValues(
                        "spring.datasource.url=" + TestDatabase.jdbcUrl(),
                        "pglease.schema=" + schema,
                        "pglease.election.lease-name=jobs",
                        "pglease.lease-duration=2s",
                        "pglease.renew-deadline=1500ms",
                        "pglease.retry-period=500ms",
                        "pglease.shedlock.enabled=false")
                .withUserConfiguration(App.class)
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    Leadership leadership = context.getBean(LeaderElection.class)
                            .awaitLeadership(Duration.ofSeconds(10))
                            .orElseThrow();
                    long token = leadership.token();
                    // the throwing listener heard it: the others are called right after it on the same thread
                    await().atMost(Duration.ofSeconds(5)).until(() -> HEARD.contains("audit elected " + token));
                    TestDatabase.execute("SELECT " + schema + ".force_release('jobs')");
                    await().atMost(Duration.ofSeconds(5)).until(() -> HEARD.contains("audit revoked " + token));
                    // the dispatch that called the throwing listener has had every chance to go on
                    await().pollDelay(Duration.ofMillis(500)).until(() -> true);
                    assertThat(HEARD)
                            .as("what the listener beans and the event listener heard")
                            .contains(
                                    "worker elected " + token,
                                    "event granted " + token,
                                    "worker revoked " + token,
                                    "event revoked " + token);
                });
    }
}
