package dev.pglease.spring;

import dev.pglease.GroupConfig;
import dev.pglease.GroupListener;
import dev.pglease.LeaderListener;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.LeaseObserver;
import dev.pglease.PgLease;
import dev.pglease.micrometer.PgLeaseMetrics;
import dev.pglease.shedlock.PgLeaseLockProvider;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.function.Supplier;
import javax.sql.DataSource;
import net.javacrumbs.shedlock.core.LockProvider;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.beans.factory.SmartInitializingSingleton;
import org.springframework.boot.autoconfigure.AutoConfiguration;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnBooleanProperty;
import org.springframework.boot.autoconfigure.condition.ConditionalOnClass;
import org.springframework.boot.autoconfigure.condition.ConditionalOnMissingBean;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.boot.context.properties.EnableConfigurationProperties;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.env.Environment;
import org.springframework.transaction.PlatformTransactionManager;

/**
 * Spring Boot auto-configuration for pglease, active when the application has a {@link DataSource}
 * (disable with {@code pglease.enabled=false}):
 * <ul>
 *   <li>with {@code pglease.migrate=true} only, migrates the pglease schema with Flyway (own history table,
 *       beside the application's own migrations), as the {@code pglease.migration.*} login; the core checks the
 *       schema version through {@code schema_version()}, which every pglease role may call;</li>
 *   <li>a {@link PgLease} bean built from {@code pglease.*} properties, closed (leases released) on shutdown;</li>
 *   <li>a {@link LeaderElection} for the lease {@code pglease.election.lease-name} (default
 *       {@code spring.application.name}), with {@link LeaderListener} beans and {@link LeaderOnly} methods;</li>
 *   <li>with {@code pglease.group.name} and {@code pglease.group.shards}: a {@link GroupMembership} of that lease
 *       group, with {@link GroupListener} beans and {@link ShardOwner} methods;</li>
 *   <li>with Micrometer and a {@code MeterRegistry}: {@link PgLeaseMetrics};</li>
 *   <li>with ShedLock and no other {@code LockProvider}: {@link PgLeaseLockProvider};</li>
 *   <li>with spring-boot-health: {@link PgLeaseHealthIndicator} (named {@code pglease});</li>
 *   <li>with spring-jdbc and a transaction manager: {@link FencedTransactionTemplate} and {@link Fenced};</li>
 *   <li>with spring-boot-actuator: {@link LeasesEndpoint} ({@code /actuator/leases}: the lease and the groups;
 *       operator actions with {@code pglease.actuator.operations-enabled=true}, handoff as
 *       {@code pglease.actuator.operator.*}).</li>
 * </ul>
 */
@AutoConfiguration(
        afterName = {
            "org.springframework.boot.jdbc.autoconfigure.DataSourceAutoConfiguration",
            "org.springframework.boot.jdbc.autoconfigure.DataSourceTransactionManagerAutoConfiguration",
            "org.springframework.boot.micrometer.metrics.autoconfigure.CompositeMeterRegistryAutoConfiguration",
            "org.springframework.boot.micrometer.metrics.autoconfigure.export.simple.SimpleMetricsExportAutoConfiguration"
        })
@ConditionalOnClass(PgLease.class)
@ConditionalOnBean(DataSource.class)
@ConditionalOnBooleanProperty(name = "pglease.enabled", matchIfMissing = true)
@EnableConfigurationProperties(PgLeaseProperties.class)
public class PgLeaseAutoConfiguration {

    private static final Logger LOG = LoggerFactory.getLogger(PgLeaseAutoConfiguration.class);

    /** The pglease schema; {@code migrationsApplied} is 0 unless {@code pglease.migrate=true} migrated it now. */
    public record PgLeaseSchema(String name, int migrationsApplied) {}

    @Bean
    @ConditionalOnMissingBean
    public PgLeaseSchema pgLeaseSchema(DataSource dataSource, PgLeaseProperties properties) {
        PgLease.Roles names = properties.getRoles().resolve(properties.getSchema());
        return new PgLeaseSchema(properties.getSchema(), PgLeaseStartup.migrateIfAsked(dataSource, properties, names));
    }

    /**
     * {@code PgLease.create} checks the login's privileges (one {@code LeaseException INSUFFICIENT_PRIVILEGE} naming
     * the missing grant, no retries) and the schema version ({@code schema_version()}, no access to Flyway's history
     * needed); its failures are told in Spring terms.
     */
    @Bean(destroyMethod = "close")
    @ConditionalOnMissingBean
    public PgLease pgLease(
            DataSource dataSource,
            PgLeaseProperties properties,
            PgLeaseSchema schema,
            ObjectProvider<LeaseObserver> observers) {
        LeaseConfig.Builder config = LeaseConfig.builder()
                .schema(schema.name())
                .leaseDuration(properties.getLeaseDuration())
                .renewDeadline(properties.getRenewDeadline())
                .retryPeriod(properties.getRetryPeriod())
                .fastFailover(properties.isFastFailover())
                .observer(composite(observers.orderedStream().toList()));
        if (properties.getHolderLabel() != null && !properties.getHolderLabel().isBlank()) {
            config.holderLabel(properties.getHolderLabel());
        }
        PgLease pglease;
        try {
            pglease = PgLease.create(dataSource, config.build());
        } catch (LeaseException e) {
            throw PgLeaseStartup.inSpringTerms(e, schema.name());
        }
        if (PgLeaseStartup.bypassesGuards(dataSource, schema.name())) {
            LOG.warn(
                    "the application's database login owns schema {} or is a superuser: the schema's guards do not "
                            + "apply to it; log in as a member of the candidate role instead",
                    schema.name());
        }
        return pglease;
    }

    @Bean
    @ConditionalOnMissingBean
    @ConditionalOnBooleanProperty(name = "pglease.election.enabled", matchIfMissing = true)
    public LeaderElection leaderElection(
            PgLease pglease,
            PgLeaseProperties properties,
            Environment environment,
            ObjectProvider<LeaderListener> listeners) {
        String lease = properties.getElection().getLeaseName();
        if (lease == null || lease.isBlank()) {
            lease = environment.getProperty("spring.application.name", "application");
        }
        return new LeaderElection(
                pglease,
                lease,
                () -> listeners.orderedStream().toList(),
                properties.getElection().getDrainTimeout());
    }

    @Bean
    @ConditionalOnMissingBean
    @ConditionalOnClass(
            name = "org.springframework.aop.framework.autoproxy.AbstractBeanFactoryAwareAdvisingPostProcessor")
    public static LeaderOnlyBeanPostProcessor leaderOnlyBeanPostProcessor() {
        return new LeaderOnlyBeanPostProcessor();
    }

    /**
     * The membership of the lease group {@code pglease.group.name}, joined once the context has started; refused at
     * start-up, naming the property, when {@code pglease.group.shards} is missing or a number is out of range.
     */
    @Bean
    @ConditionalOnMissingBean
    @ConditionalOnProperty(name = "pglease.group.name")
    public GroupMembership groupMembership(
            PgLease pglease, PgLeaseProperties properties, ObjectProvider<GroupListener> listeners) {
        PgLeaseProperties.Group group = properties.getGroup();
        if (group.getShards() == null) {
            throw new IllegalArgumentException("pglease.group.name is " + group.getName()
                    + ", but pglease.group.shards is not set: give every member of the group the same number of "
                    + "shards (1 to 100000)");
        }
        GroupConfig config;
        try {
            config = GroupConfig.weight(group.getWeight()).withPriority(group.getPriority());
        } catch (IllegalArgumentException e) {
            // the message says it all; a cause would hide the property's name from whoever reads the root cause
            throw new IllegalArgumentException("pglease.group.weight / pglease.group.priority: " + e.getMessage());
        }
        return new GroupMembership(
                pglease,
                group.getName(),
                group.getShards(),
                config,
                () -> listeners.orderedStream().toList(),
                group.getDrainTimeout());
    }

    @Bean
    @ConditionalOnMissingBean
    @ConditionalOnClass(
            name = "org.springframework.aop.framework.autoproxy.AbstractBeanFactoryAwareAdvisingPostProcessor")
    public static ShardOwnerBeanPostProcessor shardOwnerBeanPostProcessor() {
        return new ShardOwnerBeanPostProcessor();
    }

    /** Fenced writes inside Spring transactions, when spring-jdbc is present and the context has a transaction manager. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(name = "org.springframework.jdbc.datasource.DataSourceUtils")
    static class FencingConfiguration {

        @Bean
        @ConditionalOnMissingBean
        @ConditionalOnBean(PlatformTransactionManager.class)
        FencedTransactionTemplate fencedTransactionTemplate(
                PgLease pglease,
                DataSource dataSource,
                PlatformTransactionManager transactionManager,
                ObjectProvider<LeaderElection> election) {
            return new FencedTransactionTemplate(pglease, dataSource, transactionManager, election.getIfAvailable());
        }

        @Bean
        @ConditionalOnMissingBean
        static FencedBeanPostProcessor fencedBeanPostProcessor() {
            return new FencedBeanPostProcessor();
        }
    }

    /** The Actuator endpoint {@code leases}, when spring-boot-actuator is present. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(name = "org.springframework.boot.actuate.endpoint.annotation.Endpoint")
    static class EndpointConfiguration {

        @Bean
        @ConditionalOnMissingBean
        LeasesEndpoint leasesEndpoint(
                ObjectProvider<LeaderElection> election,
                ObjectProvider<GroupMembership> groups,
                PgLease pglease,
                PgLeaseProperties properties,
                DataSource dataSource) {
            String role = properties.getRoles().resolve(properties.getSchema()).operator();
            PgLeaseProperties.Operator operator = properties.getActuator().getOperator();
            Supplier<DataSource> operatorLogin =
                    PgLeaseStartup.isSet(operator) ? () -> PgLeaseStartup.dataSource(operator, dataSource) : null;
            return new LeasesEndpoint(
                    election.getIfAvailable(),
                    () -> groups.orderedStream().toList(),
                    pglease,
                    dataSource,
                    properties.getActuator().isOperationsEnabled(),
                    role,
                    operatorLogin);
        }
    }

    /**
     * The {@link LeaseObserver} beans as one: each is called apart, so one that throws (logged) does not keep the
     * others from observing.
     */
    static LeaseObserver composite(List<LeaseObserver> observers) {
        if (observers.isEmpty()) {
            return LeaseObserver.NONE;
        }
        if (observers.size() == 1) {
            return observers.get(0);
        }
        return new LeaseObserver() {
            @Override
            public void acquireAttempted(String leaseName, boolean granted, long token, Duration latency) {
                observers.forEach(o ->
                        guarded(o, "acquireAttempted", () -> o.acquireAttempted(leaseName, granted, token, latency)));
            }

            @Override
            public void renewed(String leaseName, long token, Duration latency) {
                observers.forEach(o -> guarded(o, "renewed", () -> o.renewed(leaseName, token, latency)));
            }

            @Override
            public void acquireAttempted(
                    String leaseName, boolean granted, long token, Duration latency, Instant sentAt) {
                observers.forEach(o -> guarded(
                        o, "acquireAttempted", () -> o.acquireAttempted(leaseName, granted, token, latency, sentAt)));
            }

            @Override
            public void renewed(String leaseName, long token, Duration latency, Instant sentAt) {
                observers.forEach(o -> guarded(o, "renewed", () -> o.renewed(leaseName, token, latency, sentAt)));
            }

            @Override
            public void renewFailed(String leaseName, long token, boolean lost, Throwable cause) {
                observers.forEach(o -> guarded(o, "renewFailed", () -> o.renewFailed(leaseName, token, lost, cause)));
            }

            @Override
            public void steppedDown(String leaseName, long token, String reason) {
                observers.forEach(o -> guarded(o, "steppedDown", () -> o.steppedDown(leaseName, token, reason)));
            }

            @Override
            public void released(String leaseName, long token) {
                observers.forEach(o -> guarded(o, "released", () -> o.released(leaseName, token)));
            }

            @Override
            public void databaseError(String leaseName, Throwable cause) {
                observers.forEach(o -> guarded(o, "databaseError", () -> o.databaseError(leaseName, cause)));
            }

            @Override
            public void groupJoined(String group, int shards) {
                observers.forEach(o -> o.groupJoined(group, shards));
            }

            @Override
            public void groupLeft(String group) {
                observers.forEach(o -> o.groupLeft(group));
            }

            @Override
            public void shardAssigned(String group, int shard, long token) {
                observers.forEach(o -> o.shardAssigned(group, shard, token));
            }

            @Override
            public void shardRevoked(String group, int shard, long token, boolean handedOver) {
                observers.forEach(o -> o.shardRevoked(group, shard, token, handedOver));
            }

            @Override
            public void shardUnowned(String group, int shard, long token, Duration unowned) {
                observers.forEach(o -> o.shardUnowned(group, shard, token, unowned));
            }
        };
    }

    private static void guarded(LeaseObserver observer, String call, Runnable observation) {
        try {
            observation.run();
        } catch (RuntimeException | Error e) {
            LOG.warn("pglease: LeaseObserver {}.{} threw; ignored", observer, call, e);
        }
    }

    /** Micrometer meters, when Micrometer is on the classpath and the application has a {@code MeterRegistry}. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(MeterRegistry.class)
    static class MetricsConfiguration {

        @Bean
        @ConditionalOnBean(MeterRegistry.class)
        @ConditionalOnMissingBean
        PgLeaseMetrics pgLeaseMetrics(MeterRegistry registry) {
            return new PgLeaseMetrics(registry);
        }

        /** Gauges for the election, bound once every singleton exists (the election depends on the metrics). */
        @Bean
        SmartInitializingSingleton pgLeaseElectionGauges(
                ObjectProvider<PgLeaseMetrics> metrics, ObjectProvider<LeaderElection> election) {
            return () -> metrics.ifAvailable(m -> election.ifAvailable(e -> m.bind(e.leaseName(), e::leadership)));
        }
    }

    /** The ShedLock provider, when ShedLock is on the classpath and the application defines no LockProvider. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(LockProvider.class)
    @ConditionalOnBooleanProperty(name = "pglease.shedlock.enabled", matchIfMissing = true)
    static class ShedLockConfiguration {

        @Bean
        @ConditionalOnMissingBean(LockProvider.class)
        PgLeaseLockProvider pgLeaseLockProvider(PgLease pglease, PgLeaseProperties properties) {
            return new PgLeaseLockProvider(pglease, properties.getShedlock().getNamePrefix());
        }
    }

    /** The health indicator, when spring-boot-health is on the classpath. */
    @Configuration(proxyBeanMethods = false)
    @ConditionalOnClass(name = "org.springframework.boot.health.contributor.HealthIndicator")
    @ConditionalOnBooleanProperty(name = "pglease.election.enabled", matchIfMissing = true)
    static class HealthConfiguration {

        @Bean(name = "pgleaseHealthIndicator")
        @ConditionalOnMissingBean(name = "pgleaseHealthIndicator")
        PgLeaseHealthIndicator pgleaseHealthIndicator(LeaderElection election) {
            return new PgLeaseHealthIndicator(election);
        }
    }
}
