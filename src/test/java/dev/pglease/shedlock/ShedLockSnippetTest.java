package dev.pglease.shedlock;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.spring.PgLeaseAutoConfiguration;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import javax.sql.DataSource;
import net.javacrumbs.shedlock.core.LockProvider;
import net.javacrumbs.shedlock.spring.annotation.EnableSchedulerLock;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * The ShedLock snippets of docs/integrations.md: an unchanged {@code @SchedulerLock} task (shedlock-spring's own
 * interceptor) running on the pglease provider, once defined by hand and once by the auto-configuration.
 */
class ShedLockSnippetTest {

    // tag::shedlock-bean[]
    @Configuration
    @EnableSchedulerLock(defaultLockAtMostFor = "10m")
    static class SchedulerLockConfig {
        @Bean
        LockProvider lockProvider(PgLease pglease) {
            return new PgLeaseLockProvider(pglease);
        }
    }
    // end::shedlock-bean[]

    @Configuration(proxyBeanMethods = false)
    @EnableSchedulerLock(defaultLockAtMostFor = "10m")
    static class AutoConfiguredLockProvider {}

    @Configuration(proxyBeanMethods = false)
    static class Jobs {
        @Bean
        InvoiceJobs invoiceJobs(PgLease pglease) {
            return new InvoiceJobs(pglease);
        }
    }

    @Test
    void theTaskRunsFencedUnderTheHandDefinedProvider() {
        run(SchedulerLockConfig.class);
    }

    @Test
    void theTaskRunsFencedUnderTheAutoConfiguredProvider() {
        run(AutoConfiguredLockProvider.class);
    }

    private static void run(Class<?> lockConfig) {
        String schema = TestDatabase.freshSchema();
        TestDatabase.execute("CREATE TABLE " + schema + ".invoices (id int PRIMARY KEY, sent_with_token bigint)");
        TestDatabase.execute("INSERT INTO " + schema + ".invoices (id) VALUES (1), (2)");
        DataSource dataSource = TestDatabase.dataSource("currentSchema=" + schema);
        new ApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(PgLeaseAutoConfiguration.class))
                .withBean(DataSource.class, () -> dataSource)
                .withPropertyValues("pglease.schema=" + schema, "pglease.election.enabled=false")
                .withUserConfiguration(lockConfig, Jobs.class)
                .run(context -> {
                    assertThat(context).hasNotFailed().hasSingleBean(LockProvider.class);
                    assertThat(context.getBean(LockProvider.class)).isInstanceOf(PgLeaseLockProvider.class);
                    InvoiceJobs jobs = context.getBean(InvoiceJobs.class);
                    jobs.sendInvoices();
                    jobs.sendInvoices(); // within lockAtLeastFor: ShedLock skips it
                    assertThat(query(dataSource, "SELECT count(*) FROM invoices WHERE sent_with_token = 1"))
                            .as("both invoices sent by the run with token 1")
                            .isEqualTo(2);
                    assertThat(query(
                                    dataSource,
                                    "SELECT count(*) FROM " + schema
                                            + ".lease_events WHERE name = 'invoice-run' AND kind = 'acquired'"))
                            .as("the second call did not take the lock")
                            .isEqualTo(1);
                    assertThat(PgLeaseLockProvider.currentLock()).isEmpty();
                });
    }

    private static long query(DataSource dataSource, String sql) throws Exception {
        try (Connection c = dataSource.getConnection();
                PreparedStatement ps = c.prepareStatement(sql);
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getLong(1);
        }
    }
}
