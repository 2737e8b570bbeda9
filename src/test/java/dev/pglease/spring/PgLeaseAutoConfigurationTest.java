package dev.pglease.spring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseException;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.micrometer.PgLeaseMetrics;
import dev.pglease.shedlock.PgLeaseLockProvider;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import net.javacrumbs.shedlock.core.LockProvider;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.flyway.autoconfigure.FlywayAutoConfiguration;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.Status;
import org.springframework.boot.jdbc.autoconfigure.DataSourceAutoConfiguration;
import org.springframework.boot.test.context.FilteredClassLoader;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/** The Spring Boot auto-configuration, with Spring's application-context test support, on the test database. */
class PgLeaseAutoConfigurationTest {

    private static final AtomicInteger SCHEMAS = new AtomicInteger();

    static String uniqueSchema(String prefix) {
        return prefix + ProcessHandle.current().pid() + "_" + SCHEMAS.incrementAndGet();
    }

    /** A context like an application's: Spring Boot's DataSource and Flyway auto-configuration, plus pglease. */
    static ApplicationContextRunner runner(String pgleaseSchema, String lease) {
        String appSchema = uniqueSchema("app");
        return new ApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(
                        DataSourceAutoConfiguration.class,
                        FlywayAutoConfiguration.class,
                        PgLeaseAutoConfiguration.class))
                .withPropertyValues(
                        "spring.datasource.url=" + TestDatabase.jdbcUrl(),
                        "spring.flyway.locations=classpath:dev/pglease/spring/app-migration",
                        "spring.flyway.schemas=" + appSchema,
                        "spring.flyway.default-schema=" + appSchema,
                        "pglease.schema=" + pgleaseSchema,
                        "pglease.lease-duration=6s",
                        "pglease.renew-deadline=4s",
                        "pglease.retry-period=1s",
                        "pglease.migrate=true",
                        "pglease.migration.create-roles=true",
                        "pglease.election.lease-name=" + lease);
    }

    /** Records leadership callbacks, as an application's listener bean would. */
    static final class Recorder implements LeaderListener {
        final List<String> events = new CopyOnWriteArrayList<>();

        @Override
        public void onElected(Leadership leadership) {
            events.add("elected " + leadership.token());
        }

        @Override
        public void onRevoked(Leadership leadership) {
            events.add("revoked " + leadership.token());
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class ListenerConfig {
        @Bean
        Recorder recorder() {
            return new Recorder();
        }
    }

    @Test
    void migratesBothSchemasElectsAndReleasesOnClose() throws Exception {
        String schema = uniqueSchema("pgl");
        String lease = "spring-" + System.nanoTime();
        Recorder[] recorder = new Recorder[1];
        long[] token = new long[1];
        runner(schema, lease).withUserConfiguration(ListenerConfig.class).run(context -> {
            assertThat(context)
                    .hasNotFailed()
                    .hasSingleBean(PgLease.class)
                    .hasSingleBean(LeaderElection.class)
                    .hasSingleBean(PgLeaseLockProvider.class)
                    .hasBean("pgleaseHealthIndicator")
                    .doesNotHaveBean(PgLeaseMetrics.class);
            assertThat(context.getBean(PgLeaseAutoConfiguration.PgLeaseSchema.class)
                            .migrationsApplied())
                    .as("all of pglease's migrations")
                    .isPositive();
            PgLease pglease = context.getBean(PgLease.class);
            assertThat(pglease.config().schema()).isEqualTo(schema);
            assertThat(pglease.config().leaseDuration()).isEqualTo(Duration.ofSeconds(6));
            assertThat(pglease.config().renewDeadline()).isEqualTo(Duration.ofSeconds(4));
            assertThat(pglease.config().retryPeriod()).isEqualTo(Duration.ofSeconds(1));
            String appSchema = context.getEnvironment().getProperty("spring.flyway.default-schema");
            assertThat(tableExists(appSchema + ".reports"))
                    .as("the application's own migration ran")
                    .isTrue();
            assertThat(tableExists(appSchema + ".flyway_schema_history")).isTrue();
            assertThat(tableExists(schema + "." + PgLease.HISTORY_TABLE))
                    .as("pglease keeps its own history")
                    .isTrue();

            LeaderElection election = context.getBean(LeaderElection.class);
            Leadership leadership =
                    election.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            token[0] = leadership.token();
            assertThat(pglease.leader(lease)).get().extracting(i -> i.holder()).isEqualTo(pglease.holderId());
            Health health = context.getBean("pgleaseHealthIndicator", PgLeaseHealthIndicator.class)
                    .health(true);
            assertThat(health.getStatus()).isEqualTo(Status.UP);
            assertThat(health.getDetails()).containsEntry("role", "leader").containsEntry("token", token[0]);
            recorder[0] = context.getBean(Recorder.class);
            awaitEvents(recorder[0], 1);
        });
        // Closing the context released the lease: the database lists no holder right away.
        try (PgLease observer = PgLease.create(
                TestDatabase.dataSource(),
                dev.pglease.LeaseConfig.builder().schema(schema).build())) {
            assertThat(observer.leader(lease)).isEmpty();
        }
        awaitEvents(recorder[0], 2);
        assertThat(recorder[0].events).containsExactly("elected " + token[0], "revoked " + token[0]);
    }

    @Test
    void theSchemaIsMigratedOnlyOnceAndMigrationCanBeTurnedOff() {
        String schema = uniqueSchema("pgl");
        runner(schema, "once").run(context -> assertThat(context).hasNotFailed());
        runner(schema, "once")
                .run(context -> assertThat(context.getBean(PgLeaseAutoConfiguration.PgLeaseSchema.class)
                                .migrationsApplied())
                        .isZero());
        String custom = uniqueSchema("pgl");
        runner(custom, "roles")
                .withPropertyValues("pglease.roles.candidate=" + custom + "_workers")
                .run(context -> {
                    assertThat(context).hasNotFailed();
                    assertThat(roleExists(custom + "_workers")).isTrue();
                    assertThat(roleExists(custom + "_candidate"))
                            .as("the named role replaces the default")
                            .isFalse();
                    assertThat(roleExists(custom + "_observer")).isTrue();
                });
        runner(uniqueSchema("pgl"), "off")
                .withPropertyValues("pglease.migrate=false")
                .run(context ->
                        assertThat(context).hasFailed().getFailure().hasStackTraceContaining("has no pglease tables"));
    }

    /**
     * Inside Spring the missing-schema error names what to set in Spring (or the command to run as the owner), never
     * {@code PgLease.migrate(dataSource)}: there the data source is the application's own login, which must not own
     * the schema.
     */
    @Test
    void aMissingSchemaIsReportedWithTheSpringPropertiesAndTheCommandToMigrateAsTheOwner() {
        String schema = uniqueSchema("pgl");
        runner(schema, "missing").withPropertyValues("pglease.migrate=false").run(context -> {
            assertThat(context).hasFailed();
            Throwable root = context.getStartupFailure();
            while (!(root instanceof LeaseException) && root.getCause() != null) {
                root = root.getCause();
            }
            assertThat(root).isInstanceOf(LeaseException.class);
            assertThat(((LeaseException) root).reason()).isEqualTo(LeaseException.Reason.SCHEMA_MISSING);
            assertThat(root.getMessage())
                    .contains(
                            "schema " + schema + " has no pglease tables",
                            "`pglease migrate --schema " + schema + "`",
                            "pglease.migrate=true",
                            "pglease.migration.username",
                            "spring.datasource.username")
                    .doesNotContain("PgLease.migrate(");
        });
    }

    @Test
    void invalidTimingsFailTheContextNamingTheValue() {
        runner(uniqueSchema("pgl"), "bad")
                .withPropertyValues("pglease.renew-deadline=20s")
                .run(context -> assertThat(context).hasFailed().getFailure().hasStackTraceContaining("renewDeadline"));
    }

    @Test
    void metricsWhenTheApplicationHasAMeterRegistry() throws Exception {
        String lease = "metered-" + System.nanoTime();
        runner(uniqueSchema("pgl"), lease)
                .withBean(MeterRegistry.class, SimpleMeterRegistry::new)
                .run(context -> {
                    assertThat(context).hasSingleBean(PgLeaseMetrics.class);
                    context.getBean(LeaderElection.class)
                            .awaitLeadership(Duration.ofSeconds(10))
                            .orElseThrow();
                    MeterRegistry registry = context.getBean(MeterRegistry.class);
                    assertThat(registry.get("pglease.leader")
                                    .tag("lease", lease)
                                    .gauge()
                                    .value())
                            .isEqualTo(1);
                    assertThat(registry.get("pglease.acquire.attempts")
                                    .tag("lease", lease)
                                    .tag("result", "granted")
                                    .counter()
                                    .count())
                            .isEqualTo(1);
                });
    }

    @Test
    void backsOffWhereTheApplicationDecides() {
        runner(uniqueSchema("pgl"), "off")
                .withPropertyValues("pglease.enabled=false")
                .run(context -> assertThat(context).hasNotFailed().doesNotHaveBean(PgLease.class));
        runner(uniqueSchema("pgl"), "no-election")
                .withPropertyValues("pglease.election.enabled=false", "pglease.shedlock.enabled=false")
                .run(context -> assertThat(context)
                        .hasNotFailed()
                        .hasSingleBean(PgLease.class)
                        .doesNotHaveBean(LeaderElection.class)
                        .doesNotHaveBean("pgleaseHealthIndicator")
                        .doesNotHaveBean(LockProvider.class));
        LockProvider own = configuration -> Optional.empty();
        runner(uniqueSchema("pgl"), "own-lock")
                .withBean(LockProvider.class, () -> own)
                .run(context -> assertThat(context.getBean(LockProvider.class)).isSameAs(own));
        new ApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(PgLeaseAutoConfiguration.class))
                .run(context -> assertThat(context).hasNotFailed().doesNotHaveBean(PgLease.class));
    }

    @Test
    void startsWithoutMicrometerShedLockOrHealthOnTheClasspath() {
        runner(uniqueSchema("pgl"), "bare-" + System.nanoTime())
                .withClassLoader(new FilteredClassLoader(
                        "io.micrometer", "net.javacrumbs.shedlock", "org.springframework.boot.health"))
                .run(context -> assertThat(context)
                        .hasNotFailed()
                        .hasSingleBean(PgLease.class)
                        .hasSingleBean(LeaderElection.class)
                        .doesNotHaveBean("pgleaseHealthIndicator")
                        .doesNotHaveBean("pgLeaseLockProvider")
                        .doesNotHaveBean("pgLeaseMetrics"));
    }

    static void awaitEvents(Recorder recorder, int count) throws InterruptedException {
        long end = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (recorder.events.size() < count && System.nanoTime() - end < 0) {
            Thread.sleep(10);
        }
        assertThat(recorder.events).hasSizeGreaterThanOrEqualTo(count);
    }

    static boolean roleExists(String role) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM pg_roles WHERE rolname = ?")) {
            ps.setString(1, role);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1) == 1;
            }
        }
    }

    static boolean tableExists(String table) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT to_regclass(?) IS NOT NULL")) {
            ps.setString(1, table);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    @Test
    void fastFailoverIsOffUnlessThePropertyTurnsItOn() {
        runner(uniqueSchema("pgl"), "ff-off")
                .run(context -> assertThat(
                                context.getBean(PgLease.class).config().fastFailover())
                        .isFalse());
        runner(uniqueSchema("pgl"), "ff-on")
                .withPropertyValues("pglease.fast-failover=true")
                .run(context -> assertThat(
                                context.getBean(PgLease.class).config().fastFailover())
                        .isTrue());
    }
}
