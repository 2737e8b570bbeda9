package dev.pglease.health;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.micrometer.PgLeaseMetrics;
import dev.pglease.spring.LeaderElection;
import dev.pglease.spring.PgLeaseHealthIndicator;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.sql.DataSource;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;
import org.springframework.boot.health.contributor.Health;
import org.springframework.boot.health.contributor.Status;

/**
 * The health API (and the Spring Boot indicator built on it) through a whole outage: a leader and a standby reach
 * the test database through a TCP proxy that the test cuts (connections reset, new ones refused) and restores.
 */
class LeaseHealthTest {

    private static dev.pglease.fault.kit.TcpProxy proxy;
    private static String schema;
    private static DataSource dataSource;

    @BeforeAll
    static void startProxy() throws Exception {
        schema = TestDatabase.freshSchema();
        URI target = URI.create(TestDatabase.jdbcUrl().substring("jdbc:".length()));
        proxy = new dev.pglease.fault.kit.TcpProxy(target.getHost(), target.getPort() == -1 ? 5432 : target.getPort());
        String proxied = TestDatabase.jdbcUrl().replaceFirst("//[^/]+/", "//127.0.0.1:" + proxy.port() + "/");
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL(proxied);
        ds.setConnectTimeout(2);
        ds.setLoginTimeout(2);
        dataSource = ds;
    }

    @AfterAll
    static void stopProxy() {
        if (proxy != null) {
            proxy.close();
        }
    }

    private static final LeaderListener IGNORE = new LeaderListener() {
        @Override
        public void onElected(Leadership leadership) {}

        @Override
        public void onRevoked(Leadership leadership) {}
    };

    private static LeaseConfig config(String label, PgLeaseMetrics metrics) {
        return LeaseConfig.builder()
                .schema(schema)
                .holderLabel(label)
                .observer(metrics)
                .leaseDuration(Duration.ofMillis(3000))
                .renewDeadline(Duration.ofMillis(2000))
                .retryPeriod(Duration.ofMillis(500))
                .build();
    }

    @Test
    void leaderStandbyUnreachableAndBackAgain() throws Exception {
        String lease = "health-" + System.nanoTime();
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        PgLeaseMetrics metrics = new PgLeaseMetrics(registry);
        try (PgLease a = PgLease.create(dataSource, config("a", metrics));
                PgLease b = PgLease.create(dataSource, config("b", new PgLeaseMetrics(new SimpleMeterRegistry())))) {
            LeaderElection election = new LeaderElection(a, lease, List::of);
            election.start();
            Elector leader = election.elector().orElseThrow();
            Leadership grant = leader.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            Elector standby = b.elector(lease, IGNORE);
            PgLeaseHealth health = new PgLeaseHealth().register(leader);
            PgLeaseHealth standbyHealth = new PgLeaseHealth().register(standby);
            PgLeaseHealthIndicator indicator = new PgLeaseHealthIndicator(election);

            LeaseHealth h = health.check().get(lease);
            assertThat(h.state()).isEqualTo(Elector.State.LEADER);
            assertThat(h.isLeader()).isTrue();
            assertThat(h.token()).contains(grant.token());
            assertThat(h.remaining()).isPositive();
            assertThat(health.isHealthy()).isTrue();
            Health up = indicator.health(true);
            assertThat(up.getStatus()).isEqualTo(Status.UP);
            assertThat(up.getDetails())
                    .containsEntry("role", "leader")
                    .containsEntry("token", grant.token())
                    .containsEntry("lease", lease);

            await().atMost(5, TimeUnit.SECONDS)
                    .until(() -> standby.lastSeenLeader().isPresent());
            LeaseHealth s = standbyHealth.check().get(lease);
            assertThat(s.state()).isEqualTo(Elector.State.STANDBY);
            assertThat(s.isHealthy()).isTrue();
            assertThat(s.token()).isEmpty();
            assertThat(s.leader()).contains(a.holderId());

            // The database goes away: the leader steps down at its deadline, and both report it.
            proxy.cut();
            await().atMost(10, TimeUnit.SECONDS)
                    .until(() -> health.check().get(lease).state() == Elector.State.DATABASE_UNREACHABLE
                            && standbyHealth.check().get(lease).state() == Elector.State.DATABASE_UNREACHABLE);
            assertThat(health.isHealthy()).isFalse();
            assertThat(grant.isValid()).isFalse();
            Health down = indicator.health(true);
            assertThat(down.getStatus()).isEqualTo(Status.DOWN);
            assertThat(down.getDetails()).containsEntry("state", "DATABASE_UNREACHABLE");
            assertThat(registry.get("pglease.database.errors").counters().stream()
                            .mapToDouble(c -> c.count())
                            .sum())
                    .isPositive();
            assertThat(registry.get("pglease.renew.failures")
                            .tag("kind", "error")
                            .counter()
                            .count())
                    .isPositive();
            assertThat(registry.get("pglease.stepdowns")
                            .tag("lease", lease)
                            .counter()
                            .count())
                    .isEqualTo(1);

            // It comes back: one of them leads again, the other is a healthy standby.
            proxy.restore();
            await().atMost(15, TimeUnit.SECONDS)
                    .until(() -> health.isHealthy()
                            && standbyHealth.isHealthy()
                            && (leader.isLeader() ^ standby.isLeader()));
            assertThat(indicator.health(true).getStatus()).isEqualTo(Status.UP);

            election.stop();
            assertThat(indicator.health(true).getStatus()).isEqualTo(Status.OUT_OF_SERVICE);
            assertThat(LeaseHealth.of(leader).state()).isEqualTo(Elector.State.CLOSED);
            assertThat(LeaseHealth.of(leader).isHealthy()).isFalse();
        }
    }
}
