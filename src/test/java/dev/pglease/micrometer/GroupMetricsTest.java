package dev.pglease.micrometer;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.GroupListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseGroup;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The meters of lease groups: shards owned, moves in, out and lost, and how long each shard a member took had no
 * owner, per group; the shards' lease meters once per group, not once per shard.
 */
@org.junit.jupiter.api.Timeout(60)
class GroupMetricsTest {

    private static final GroupListener NOTHING = new GroupListener() {
        @Override
        public void onAssigned(int shard, Leadership leadership) {}

        @Override
        public void onRevoked(int shard, Leadership leadership) {}
    };

    private static String schema;
    private final List<PgLease> opened = new ArrayList<>();

    @BeforeAll
    static void migrate() {
        schema = TestDatabase.freshSchema();
    }

    @AfterEach
    void closeAll() {
        opened.forEach(PgLease::close);
    }

    private PgLease member(String label, PgLeaseMetrics metrics) {
        PgLease p = PgLease.create(
                TestDatabase.dataSource(),
                LeaseConfig.builder()
                        .schema(schema)
                        .holderLabel(label)
                        .leaseDuration(Duration.ofMillis(1500))
                        .renewDeadline(Duration.ofMillis(1000))
                        .retryPeriod(Duration.ofMillis(250))
                        .observer(metrics)
                        .build());
        opened.add(p);
        return p;
    }

    @Test
    void aJoinCountsTheMovesOnBothSidesAndTheShortTimeTheMovedShardsHadNoOwner() throws Exception {
        String group = "metered-" + System.nanoTime();
        SimpleMeterRegistry first = new SimpleMeterRegistry();
        SimpleMeterRegistry second = new SimpleMeterRegistry();
        LeaseGroup a = member("a", new PgLeaseMetrics(first)).group(group, 8, NOTHING);
        await("all 8 shards", () -> a.ownedShards().size() == 8);
        await("owned gauge 8", () -> owned(first, group) == 8);
        assertThat(moves(first, group, "in")).isEqualTo(8);

        LeaseGroup b = member("b", new PgLeaseMetrics(second)).group(group, 8, NOTHING);
        await("4 each", () -> a.ownedShards().size() == 4 && b.ownedShards().size() == 4);
        await("the meters follow", () -> owned(first, group) == 4 && owned(second, group) == 4);
        assertThat(moves(first, group, "out"))
                .as("handed over by the first member")
                .isEqualTo(4);
        assertThat(moves(first, group, "lost")).isZero();
        assertThat(moves(second, group, "in")).isEqualTo(4);
        await(
                "each moved shard's time without an owner",
                () -> second.get("pglease.group.unowned")
                                .tag("group", group)
                                .timer()
                                .count()
                        == 4);
        assertThat(first.get("pglease.group.unowned")
                        .tag("group", group)
                        .timer()
                        .count())
                .as("a shard's first grant: it never had an owner to be without")
                .isZero();
        double max =
                second.get("pglease.group.unowned").tag("group", group).timer().max(TimeUnit.MILLISECONDS);
        System.out.printf("cooperative moves of a join: longest time without an owner %.1f ms%n", max);
        assertThat(max).as("a cooperative move: the release wakes the taker").isLessThan(500);

        assertThat(first.getMeters().stream().map(m -> m.getId().getTag("lease")))
                .as("shard leases are metered once per group")
                .contains(group + "/*")
                .noneMatch(lease -> lease != null && lease.matches(".*/[0-9]+"));
    }

    @Test
    void theShardsOfAHolderThatStoppedRenewingAreMeasuredFromTheirExpiry() throws Exception {
        String group = "expired-" + System.nanoTime();
        // a member that joins, takes its shards and never renews (a crash, as the database sees it)
        try (Connection c = TestDatabase.dataSource().getConnection()) {
            try (PreparedStatement ps =
                    c.prepareStatement("SELECT * FROM " + schema + ".group_join(?, 'ghost', 8, 1, 0, 1500)")) {
                ps.setString(1, group);
                ps.executeQuery().close();
            }
            for (int s = 0; s < 8; s++) {
                try (PreparedStatement ps =
                        c.prepareStatement("SELECT * FROM " + schema + ".acquire(?, 'ghost', 1500, 'shard')")) {
                    ps.setString(1, group + "/" + s);
                    ps.executeQuery().close();
                }
            }
        }
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        LeaseGroup survivor = member("survivor", new PgLeaseMetrics(registry)).group(group, 8, NOTHING);
        await(
                "every shard, once the ghost expired",
                () -> survivor.ownedShards().size() == 8);
        await(
                "measured",
                () -> registry.get("pglease.group.unowned")
                                .tag("group", group)
                                .timer()
                                .count()
                        == 8);
        double max = registry.get("pglease.group.unowned")
                .tag("group", group)
                .timer()
                .max(TimeUnit.MILLISECONDS);
        System.out.printf("shards of a member that stopped renewing: longest time without an owner %.1f ms%n", max);
        assertThat(max).as("taken at the read scheduled at the ghost's expiry").isLessThan(500);
        assertThat(moves(registry, group, "in")).isEqualTo(8);
    }

    private static double owned(SimpleMeterRegistry registry, String group) {
        Gauge gauge =
                registry.find("pglease.group.shards.owned").tag("group", group).gauge();
        return gauge == null ? -1 : gauge.value();
    }

    private static double moves(SimpleMeterRegistry registry, String group, String direction) {
        return registry.get("pglease.group.moves")
                .tag("group", group)
                .tag("direction", direction)
                .counter()
                .count();
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
