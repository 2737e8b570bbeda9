package dev.pglease.spring;

import dev.pglease.LeaseObserver;
import java.time.Duration;
import java.time.Instant;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.ImportAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.jdbc.autoconfigure.DataSourceAutoConfiguration;
import org.springframework.boot.jdbc.autoconfigure.DataSourceTransactionManagerAutoConfiguration;
import org.springframework.boot.jdbc.autoconfigure.JdbcTemplateAutoConfiguration;
import org.springframework.boot.transaction.autoconfigure.TransactionAutoConfiguration;
import org.springframework.context.ApplicationListener;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.event.ContextClosedEvent;
import org.springframework.jdbc.core.JdbcTemplate;

/**
 * A Spring Boot application for the drain test, run in its own JVM: once it leads, it starts one 3-second
 * {@link LeaderOnly} task that ends with a fenced write of the database time it finished, and prints
 * {@code started}. Arguments are Spring properties ({@code --name=value}). Each step of the shutdown is printed as
 * {@code at <step> <epoch microseconds>} (the JVM's wall clock, which the database on the same machine shares).
 */
@Configuration(proxyBeanMethods = false)
@ImportAutoConfiguration({
    DataSourceAutoConfiguration.class,
    DataSourceTransactionManagerAutoConfiguration.class,
    JdbcTemplateAutoConfiguration.class,
    TransactionAutoConfiguration.class,
    PgLeaseAutoConfiguration.class
})
public class DrainApplication {

    /** The leader's job. */
    public static class Charger {
        private final JdbcTemplate jdbc;
        private final FencedTransactionTemplate fenced;

        public Charger(JdbcTemplate jdbc, FencedTransactionTemplate fenced) {
            this.jdbc = jdbc;
            this.fenced = fenced;
        }

        @LeaderOnly
        public void charge() throws InterruptedException {
            System.out.println("started");
            Thread.sleep(3000);
            fenced.execute(status -> jdbc.update("INSERT INTO done (at) VALUES (clock_timestamp())"));
            step("committed");
        }
    }

    static void step(String name) {
        Instant now = Instant.now();
        System.out.println("at " + name + " " + (now.getEpochSecond() * 1_000_000 + now.getNano() / 1_000));
    }

    @Bean
    Charger charger(JdbcTemplate jdbc, FencedTransactionTemplate fenced) {
        return new Charger(jdbc, fenced);
    }

    @Bean
    LeaseObserver shutdownSteps() {
        return new LeaseObserver() {
            @Override
            public void steppedDown(String leaseName, long token, String reason) {
                step("stepped-down");
            }

            @Override
            public void released(String leaseName, long token) {
                step("released");
            }
        };
    }

    @Bean
    ApplicationListener<ContextClosedEvent> closing() {
        return event -> step("closing");
    }

    public static void main(String[] args) throws Exception {
        ConfigurableApplicationContext context = new SpringApplicationBuilder(DrainApplication.class)
                .web(WebApplicationType.NONE)
                .run(args);
        long token = context.getBean(LeaderElection.class)
                .awaitLeadership(Duration.ofSeconds(30))
                .orElseThrow()
                .token();
        System.out.println("leader " + token);
        Charger charger = context.getBean(Charger.class);
        Thread task = new Thread(
                () -> {
                    try {
                        charger.charge();
                    } catch (InterruptedException e) {
                        System.err.println("interrupted");
                        Thread.currentThread().interrupt();
                    } catch (RuntimeException e) {
                        System.err.println("failed: " + e);
                        throw e;
                    }
                },
                "charge");
        task.start();
        Thread.currentThread().join(); // until SIGTERM: Spring's shutdown hook closes the context (and drains)
    }
}
