package dev.pglease.micrometer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Micrometer meters fed by real electors against a real PostgreSQL. */
class PgLeaseMetricsTest {

    private static final LeaderListener IGNORE = new LeaderListener() {
        @Override
        public void onElected(Leadership leadership) {}

        @Override
        public void onRevoked(Leadership leadership) {}
    };

    private static String schema;

    @BeforeAll
    static void migrate() {
        schema = TestDatabase.freshSchema();
    }

    private static LeaseConfig config(PgLeaseMetrics metrics, String label) {
        return LeaseConfig.builder()
                .schema(schema)
                .holderLabel(label)
                .observer(metrics)
                .leaseDuration(Duration.ofMillis(4000))
                .renewDeadline(Duration.ofMillis(3000))
                .retryPeriod(Duration.ofMillis(400))
                .build();
    }

    private static double gauge(SimpleMeterRegistry r, String name, String lease) {
        return r.get(name).tag("lease", lease).gauge().value();
    }

    private static double counter(SimpleMeterRegistry r, String name, String lease, String... tags) {
        return r.get(name).tags(Tags.of("lease", lease).and(tags)).counter().count();
    }

    @Test
    void leaderAndStandbyMetricsFollowTheElection() throws Exception {
        String lease = "metrics-" + System.nanoTime();
        SimpleMeterRegistry registryA = new SimpleMeterRegistry();
        SimpleMeterRegistry registryB = new SimpleMeterRegistry();
        PgLeaseMetrics metricsA = new PgLeaseMetrics(registryA, Tags.of("app", "test"));
        PgLeaseMetrics metricsB = new PgLeaseMetrics(registryB);
        try (PgLease a = PgLease.create(TestDatabase.dataSource(), config(metricsA, "a"));
                PgLease b = PgLease.create(TestDatabase.dataSource(), config(metricsB, "b"))) {
            Elector electorA = metricsA.bind(a.elector(lease, IGNORE));
            Leadership first = electorA.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            Elector electorB = metricsB.bind(b.elector(lease, IGNORE));

            // The leader: gauges, a granted acquire with its time to acquire, renewals with latencies.
            assertThat(registryA
                            .get("pglease.leader")
                            .tags("lease", lease, "app", "test")
                            .gauge()
                            .value())
                    .isEqualTo(1);
            assertThat(gauge(registryA, "pglease.token", lease)).isEqualTo(first.token());
            assertThat(counter(registryA, "pglease.acquire.attempts", lease, "result", "granted"))
                    .isEqualTo(1);
            assertThat(registryA
                            .get("pglease.acquire.time")
                            .tag("lease", lease)
                            .timer()
                            .count())
                    .isEqualTo(1);
            await().atMost(5, TimeUnit.SECONDS)
                    .until(() -> registryA
                                    .get("pglease.renew")
                                    .tag("lease", lease)
                                    .timer()
                                    .count()
                            >= 2);
            assertThat(registryA
                            .get("pglease.renew")
                            .tag("lease", lease)
                            .timer()
                            .totalTime(TimeUnit.NANOSECONDS))
                    .isPositive();

            // The standby: denied attempts, not leading, and the leader's token as the last token seen.
            await().atMost(5, TimeUnit.SECONDS)
                    .until(() -> counter(registryB, "pglease.acquire.attempts", lease, "result", "denied") >= 1);
            assertThat(gauge(registryB, "pglease.leader", lease)).isZero();
            assertThat(gauge(registryB, "pglease.token", lease)).isEqualTo(first.token());

            // An operator hands the lease over to b: the leader steps down (the handoff's notification makes it
            // re-read its row, or its next renewal is refused), and the standby takes over; its time to acquire runs
            // from its first denied attempt.
            long waitedFrom = System.nanoTime();
            TestDatabase.execute("SELECT " + schema + ".handoff('" + lease + "', 'b/')");
            await().atMost(5, TimeUnit.SECONDS).until(electorB::isLeader);
            long sinceForce = System.nanoTime() - waitedFrom;
            await().atMost(5, TimeUnit.SECONDS).until(() -> counter(registryA, "pglease.stepdowns", lease) == 1);
            assertThat(counter(registryA, "pglease.renew.failures", lease, "kind", "lost"))
                    .as("renewals refused: none when the re-read found the handoff first, else the one that did")
                    .isLessThanOrEqualTo(1);
            assertThat(counter(registryA, "pglease.renew.failures", lease, "kind", "error"))
                    .isZero();
            assertThat(gauge(registryA, "pglease.leader", lease)).isZero();
            assertThat(gauge(registryB, "pglease.leader", lease)).isEqualTo(1);
            long tokenB = electorB.leadership().orElseThrow().token();
            assertThat(tokenB).isGreaterThan(first.token());
            assertThat(gauge(registryB, "pglease.token", lease)).isEqualTo(tokenB);
            assertThat(registryB
                            .get("pglease.acquire.time")
                            .tag("lease", lease)
                            .timer()
                            .totalTime(TimeUnit.NANOSECONDS))
                    .as("waited as a standby since before the force release")
                    .isGreaterThan(sinceForce);

            electorB.close();
            assertThat(counter(registryB, "pglease.releases", lease)).isEqualTo(1);
            assertThat(counter(registryB, "pglease.stepdowns", lease)).isEqualTo(1);
            assertThat(gauge(registryB, "pglease.leader", lease)).isZero();
            assertThat(counter(registryA, "pglease.database.errors", lease)).isZero();
        }
    }
}
