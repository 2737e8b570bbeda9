package dev.pglease.group;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.bench.BenchDatabase;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The scale harness of lease groups, small enough for the default build: 64 shards over four members in this JVM,
 * at 1 s / 600 ms / 200 ms, against an embedded server. The server counts the members' statements; the full sizes
 * run in {@link GroupScaleTest} ({@code -Ptargets}).
 */
@Timeout(90)
class GroupScaleSmokeTest {

    @Test
    void aSettledGroupIsBalancedRenewsOncePerMemberPerRetryPeriodAndAJoinMovesOnlyTheNewcomersShare() throws Exception {
        GroupScale.Settings s =
                new GroupScale.Settings(64, 4, Duration.ofMillis(1000), Duration.ofMillis(600), Duration.ofMillis(200));
        try (BenchDatabase db = BenchDatabase.start()) {
            assertThat(db.statementsAvailable())
                    .as("pg_stat_statements is loaded: the renewals are counted by the server")
                    .isTrue();
            GroupScaleRun.Result r = GroupScaleRun.run(db, s, Duration.ofSeconds(4), 15_000);
            GroupScale.Window w = r.window();

            assertThat(r.settledMs())
                    .as("balanced within one, every shard held\n" + r.report())
                    .isNotNegative();
            assertThat(r.renewalsPerMemberPerRetryPeriod())
                    .as("group_renew per member per retry period\n" + r.report())
                    .isBetween(0.8, 1.2);
            assertThat(w.calls("acquire") + w.calls("release") + w.calls("renew_all"))
                    .as("a settled group sends no other lease statement\n" + r.report())
                    .isZero();
            assertThat(w.assigned() + w.revoked())
                    .as("a settled group moves nothing\n" + r.report())
                    .isZero();
            assertThat(w.incomplete())
                    .as("samples with a shard not held\n" + r.report())
                    .isZero();
            if (db.embedded()) {
                assertThat(w.serverCpuCores()).as("server CPU measured").isPositive();
            }
            assertThat(w.walBytesPerSecond()).as("renewals write WAL").isPositive();

            assertThat(r.joinMs())
                    .as("a join balanced within 3 s\n" + r.report())
                    .isBetween(0L, 3_000L);
            assertThat(r.newcomerShards())
                    .as("the newcomer's share\n" + r.report())
                    .isBetween(12, 13);
            assertThat(r.moved()).as("shards moved by the join\n" + r.report()).isEqualTo(r.newcomerShards());
            assertThat(r.moved()).as(r.report()).isLessThanOrEqualTo(r.joinLimit());
            assertThat(r.movedElsewhere())
                    .as("shards moved between the old members\n" + r.report())
                    .isZero();
        }
    }
}
