package dev.pglease.health;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The health snippet of docs/integrations.md, compiled and run. */
class HealthSnippetTest {

    static boolean probe(Elector elector, List<String> report) {
        // tag::health[]
        PgLeaseHealth health = new PgLeaseHealth().register(elector);
        for (LeaseHealth lease : health.check().values()) {
            // LEADER, STANDBY (healthy), DATABASE_UNREACHABLE or CLOSED
            report.add(lease.leaseName() + " " + lease.state() + " token="
                    + lease.token().orElse(null));
        }
        boolean ready = health.isHealthy();
        // end::health[]
        return ready;
    }

    @Test
    void theSnippetReportsTheLeader() throws Exception {
        String schema = TestDatabase.freshSchema();
        try (PgLease pglease = PgLease.create(
                        TestDatabase.dataSource(),
                        LeaseConfig.builder().schema(schema).build());
                Elector elector = pglease.elector("snippet", new LeaderListener() {
                    @Override
                    public void onElected(Leadership leadership) {}

                    @Override
                    public void onRevoked(Leadership leadership) {}
                })) {
            long token = elector.awaitLeadership(Duration.ofSeconds(10))
                    .orElseThrow()
                    .token();
            List<String> log = new ArrayList<>();
            assertThat(probe(elector, log)).isTrue();
            assertThat(log).containsExactly("snippet LEADER token=" + token);
        }
    }
}
