package dev.pglease.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.FencingContext;
import dev.pglease.GroupListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.LeaseGrant;
import dev.pglease.LeaseGroup;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.jdbc.autoconfigure.DataSourceAutoConfiguration;
import org.springframework.boot.jdbc.autoconfigure.DataSourceTransactionManagerAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.context.event.EventListener;

/**
 * A lease group in a Spring application: joined from {@code pglease.group.*}, {@code GroupListener} beans and shard
 * events, {@code @ShardOwner} methods run only for owned shards under the shard's grant, a cooperative move waits
 * for the shard's work in flight, and bad properties are refused naming them.
 */
@org.junit.jupiter.api.Timeout(120)
class SpringGroupTest {

    /** Records the shard callbacks and events, and runs shard work. */
    static class ShardWork {
        final List<String> seen = new CopyOnWriteArrayList<>();
        final Map<Integer, LeaseGrant> grants = new ConcurrentHashMap<>();
        final List<String> perShard = new CopyOnWriteArrayList<>();
        volatile CountDownLatch hold = new CountDownLatch(0);

        @ShardOwner(group = "orders")
        public void process(@Shard int shard) throws InterruptedException {
            LeaseGrant grant = FencingContext.current().orElseThrow();
            grants.put(shard, grant);
            seen.add("work " + shard + " " + GroupMembership.currentShard().orElse(-1) + " " + grant.leaseName());
            hold.await(20, TimeUnit.SECONDS);
        }

        @ShardOwner
        public Optional<Long> token(@Shard int shard) {
            return Optional.of(FencingContext.currentToken());
        }

        @ShardOwner
        public long tokenOrRefusal(@Shard int shard) {
            return FencingContext.currentToken();
        }

        @ShardOwner
        public void everyOwnedShard() {
            perShard.add(GroupMembership.currentShard().orElseThrow() + " "
                    + FencingContext.current().orElseThrow().leaseName());
        }

        // what the test reads, through the proxy
        public List<String> seen() {
            return seen;
        }

        public Map<Integer, LeaseGrant> grants() {
            return grants;
        }

        public List<String> perShard() {
            return perShard;
        }

        public void hold(CountDownLatch latch) {
            hold = latch;
        }

        @EventListener
        void assigned(ShardAssignedEvent e) {
            seen.add("assigned " + e.group() + " " + e.shard() + " "
                    + e.leadership().token());
        }

        @EventListener
        void revoked(ShardRevokedEvent e) {
            seen.add("revoked " + e.group() + " " + e.shard() + " " + e.handedOver());
        }
    }

    @Configuration(proxyBeanMethods = false)
    static class App {
        static final List<String> LISTENED = new CopyOnWriteArrayList<>();

        @Bean
        ShardWork shardWork() {
            return new ShardWork();
        }

        @Bean
        GroupListener shardLog() {
            return new GroupListener() {
                @Override
                public void onAssigned(int shard, Leadership leadership) {
                    LISTENED.add("assigned " + shard);
                }

                @Override
                public void onRevoked(int shard, Leadership leadership) {
                    LISTENED.add("revoked " + shard);
                }
            };
        }
    }

    private static ApplicationContextRunner runner(String schema, String... properties) {
        return new ApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(
                        DataSourceAutoConfiguration.class,
                        DataSourceTransactionManagerAutoConfiguration.class,
                        PgLeaseAutoConfiguration.class))
                .withPropertyValues(
                        "spring.datasource.url=" + TestDatabase.jdbcUrl(),
                        "pglease.schema=" + schema,
                        "pglease.election.enabled=false",
                        "pglease.lease-duration=1500ms",
                        "pglease.renew-deadline=1s",
                        "pglease.retry-period=250ms",
                        "pglease.group.name=orders",
                        "pglease.group.shards=4")
                .withPropertyValues(properties)
                .withUserConfiguration(App.class);
    }

    private static PgLease otherMember(String schema) {
        return PgLease.create(
                TestDatabase.dataSource(),
                LeaseConfig.builder()
                        .schema(schema)
                        .holderLabel("other")
                        .leaseDuration(Duration.ofMillis(1500))
                        .renewDeadline(Duration.ofMillis(1000))
                        .retryPeriod(Duration.ofMillis(250))
                        .build());
    }

    @Test
    void thePropertyConfiguredGroupTellsListenerBeansPublishesShardEventsAndHandsOverOnShutdown() throws Exception {
        String schema = TestDatabase.freshSchema();
        App.LISTENED.clear();
        List<String>[] seen = new List[1];
        runner(schema, "pglease.group.weight=2", "pglease.group.priority=5").run(context -> {
            assertThat(context).hasNotFailed();
            GroupMembership membership = context.getBean(GroupMembership.class);
            assertThat(membership.config().weight()).isEqualTo(2);
            assertThat(membership.config().priority()).isEqualTo(5);
            await("all 4 shards", () -> membership.ownedShards().size() == 4);
            seen[0] = context.getBean(ShardWork.class).seen();
            await(
                    "4 events",
                    () -> seen[0].stream().filter(e -> e.startsWith("assigned")).count() == 4);
            assertThat(App.LISTENED).containsExactlyInAnyOrder("assigned 0", "assigned 1", "assigned 2", "assigned 3");
        });
        assertThat(seen[0].stream().filter(e -> e.startsWith("revoked")))
                .as("closing the context leaves the group, handing every shard over")
                .containsExactlyInAnyOrder(
                        "revoked orders 0 true",
                        "revoked orders 1 true",
                        "revoked orders 2 true",
                        "revoked orders 3 true");
    }

    @Test
    void shardOwnerMethodsRunOnlyForTheShardsThisMemberOwnsUnderEachShardsGrant() throws Exception {
        String schema = TestDatabase.freshSchema();
        try (PgLease other = otherMember(schema)) {
            runner(schema).run(context -> {
                GroupMembership membership = context.getBean(GroupMembership.class);
                await("all 4", () -> membership.ownedShards().size() == 4);
                try (LeaseGroup second = other.group("orders", 4, nothing())) {
                    await(
                            "2 each",
                            () -> membership.ownedShards().size() == 2
                                    && second.ownedShards().size() == 2);
                    ShardWork work = context.getBean(ShardWork.class);
                    for (int shard = 0; shard < 4; shard++) {
                        work.process(shard);
                    }
                    assertThat(work.grants().keySet()).isEqualTo(membership.ownedShards());
                    for (int shard : membership.ownedShards()) {
                        Leadership grant = membership.leadership(shard).orElseThrow();
                        assertThat(work.grants().get(shard)).isSameAs(grant);
                        assertThat(work.seen()).contains("work " + shard + " " + shard + " orders/" + shard);
                        assertThat(work.token(shard)).contains(grant.token());
                        assertThat(work.tokenOrRefusal(shard)).isEqualTo(grant.token());
                    }
                    int notMine = second.ownedShards().first();
                    assertThat(work.token(notMine)).isEmpty();
                    assertThatThrownBy(() -> work.tokenOrRefusal(notMine))
                            .isInstanceOf(LeaseException.class)
                            .hasMessageContaining("does not own shard " + notMine + " of group orders")
                            .satisfies(e -> assertThat(((LeaseException) e).reason())
                                    .isEqualTo(LeaseException.Reason.LEASE_LOST));
                    assertThatThrownBy(() -> work.process(4))
                            .isInstanceOf(IllegalArgumentException.class)
                            .hasMessageContaining("shards 0 to 3, got 4");

                    work.everyOwnedShard();
                    List<String> expected = new ArrayList<>();
                    membership.ownedShards().forEach(s -> expected.add(s + " orders/" + s));
                    assertThat(work.perShard())
                            .as("once per owned shard, in order")
                            .containsExactlyElementsOf(expected);
                    assertThat(FencingContext.current())
                            .as("nothing left bound")
                            .isEmpty();
                }
            });
        }
    }

    @Test
    void aCooperativeMoveWaitsForTheShardsWorkInFlightAndStartsNoNewWorkOnIt() throws Exception {
        String schema = TestDatabase.freshSchema();
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try (PgLease other = otherMember(schema)) {
            runner(schema).run(context -> {
                GroupMembership membership = context.getBean(GroupMembership.class);
                await("all 4", () -> membership.ownedShards().size() == 4);
                ShardWork work = context.getBean(ShardWork.class);
                CountDownLatch hold = new CountDownLatch(1);
                work.hold(hold);
                List<Future<?>> running = new ArrayList<>();
                for (int shard = 0; shard < 4; shard++) {
                    int s = shard;
                    running.add(pool.submit(() -> {
                        work.process(s);
                        return null;
                    }));
                }
                await("4 calls in flight", () -> work.grants().size() == 4);
                try (LeaseGroup second = other.group("orders", 4, nothing())) {
                    await(
                            "two shards being handed over",
                            () -> work.seen().stream()
                                            .filter(e -> e.startsWith("revoked"))
                                            .count()
                                    == 2);
                    List<Integer> moving = new ArrayList<>();
                    for (int s = 0; s < 4; s++) {
                        if (work.seen().contains("revoked orders " + s + " true")) {
                            moving.add(s);
                        }
                    }
                    int before = work.grants().size();
                    work.process(moving.get(0));
                    assertThat(work.seen().stream().filter(e -> e.startsWith("work " + moving.get(0))))
                            .as("no new work on a shard being handed over")
                            .hasSize(1);
                    assertThat(work.grants()).hasSize(before);
                    Thread.sleep(500);
                    assertThat(second.ownedShards())
                            .as("the moving shards wait for their work in flight")
                            .isEmpty();
                    long released = System.nanoTime();
                    hold.countDown();
                    await(
                            "the other member has its two",
                            () -> second.ownedShards().size() == 2);
                    System.out.printf(
                            "shards handed over %d ms after their work in flight ended%n",
                            (System.nanoTime() - released) / 1_000_000);
                    assertThat(second.ownedShards()).containsExactlyInAnyOrderElementsOf(moving);
                }
                for (Future<?> f : running) {
                    f.get(10, TimeUnit.SECONDS);
                }
            });
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void badGroupPropertiesAreRefusedAtStartNamingTheProperty() {
        String schema = TestDatabase.freshSchema();
        new ApplicationContextRunner()
                .withConfiguration(
                        AutoConfigurations.of(DataSourceAutoConfiguration.class, PgLeaseAutoConfiguration.class))
                .withPropertyValues(
                        "spring.datasource.url=" + TestDatabase.jdbcUrl(),
                        "pglease.schema=" + schema,
                        "pglease.election.enabled=false",
                        "pglease.group.name=orders")
                .run(context -> assertThat(context)
                        .hasFailed()
                        .getFailure()
                        .rootCause()
                        .hasMessageContaining("pglease.group.shards is not set"));
        runner(schema, "pglease.group.weight=0")
                .run(context -> assertThat(context)
                        .hasFailed()
                        .getFailure()
                        .rootCause()
                        .hasMessageContaining("pglease.group.weight")
                        .hasMessageContaining("got 0"));
        runner(schema, "pglease.group.shards=0")
                .run(context -> assertThat(context)
                        .hasFailed()
                        .getFailure()
                        .rootCause()
                        .hasMessageContaining("pglease.group.shards")
                        .hasMessageContaining("got 0"));
    }

    private static GroupListener nothing() {
        return new GroupListener() {
            @Override
            public void onAssigned(int shard, Leadership leadership) {}

            @Override
            public void onRevoked(int shard, Leadership leadership) {}
        };
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - end > 0) {
                throw new AssertionError("timed out waiting for: " + what);
            }
            Thread.sleep(5);
        }
    }
}
