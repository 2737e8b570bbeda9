package dev.pglease.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.jdbc.autoconfigure.DataSourceAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.event.EventListener;
import org.springframework.scheduling.annotation.EnableScheduling;

/** The Spring Boot snippets of docs/integrations.md (properties, listener bean, leader-only job), run. */
class SpringSnippetTest {

    static final String PROPERTIES = "dev/pglease/spring/snippet-application.properties";

    static final List<String> EVENTS = new CopyOnWriteArrayList<>();

    @Configuration(proxyBeanMethods = false)
    @EnableScheduling
    static class Application {

        @Bean
        Reports reports() {
            return new Reports();
        }

        // tag::spring-listener[]
        @Bean
        LeaderListener leadershipLog() {
            return new LeaderListener() {
                @Override
                public void onElected(Leadership leadership) {
                    EVENTS.add("elected " + leadership.token());
                }

                @Override
                public void onRevoked(Leadership leadership) {
                    EVENTS.add("revoked " + leadership.token());
                }
            };
        }
        // end::spring-listener[]

        // tag::spring-events[]
        @EventListener
        void granted(LeaseGrantedEvent event) {
            Leadership leadership = event.leadership(); // lease name, token, validity
            EVENTS.add("granted " + leadership.leaseName() + " " + leadership.token());
        }

        @EventListener
        void revoked(LeaseRevokedEvent event) {
            Leadership leadership = event.leadership(); // the grant that ended, and why
            EVENTS.add("revoked " + leadership.token() + ": " + leadership.revocationReason());
        }
        // end::spring-events[]
    }

    static String[] snippetProperties() {
        Properties p = new Properties();
        try (InputStream in = SpringSnippetTest.class.getClassLoader().getResourceAsStream(PROPERTIES)) {
            p.load(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        List<String> values = new ArrayList<>();
        p.forEach((k, v) -> values.add(k + "=" + v));
        return values.toArray(String[]::new);
    }

    @Test
    void theDocumentedApplicationElectsRunsTheLeaderOnlyJobAndReleasesOnShutdown() {
        String schema = PgLeaseAutoConfigurationTest.uniqueSchema("doc");
        PgLease.migrate(TestDatabase.dataSource(), schema); // the DBA's act: the application only checks the version
        new ApplicationContextRunner()
                .withConfiguration(
                        AutoConfigurations.of(DataSourceAutoConfiguration.class, PgLeaseAutoConfiguration.class))
                .withPropertyValues(snippetProperties())
                .withPropertyValues(
                        "spring.datasource.url=" + TestDatabase.jdbcUrl(),
                        "pglease.schema=" + schema,
                        "reports.interval=100ms")
                .withUserConfiguration(Application.class)
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    PgLease pglease = context.getBean(PgLease.class);
                    assertThat(pglease.config().leaseDuration()).isEqualTo(Duration.ofSeconds(10));
                    assertThat(pglease.config().renewDeadline()).isEqualTo(Duration.ofSeconds(6));
                    assertThat(context.getBean(LeaderElection.class).leaseName())
                            .isEqualTo("billing");
                    Reports reports = context.getBean(Reports.class);
                    await().atMost(10, TimeUnit.SECONDS)
                            .until(() -> reports.published().size() >= 2);
                    long token = reports.published().get(0);
                    assertThat(EVENTS).contains("elected " + token, "granted billing " + token);
                });
        await().atMost(5, TimeUnit.SECONDS).until(() -> EVENTS.stream().anyMatch(e -> e.startsWith("revoked")));
    }
}
