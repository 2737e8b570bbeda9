package dev.pglease.micrometer;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import javax.sql.DataSource;
import org.junit.jupiter.api.Test;

/** The Micrometer snippet of docs/integrations.md, compiled and run. */
class MicrometerSnippetTest {

    static PgLease meteredElection(DataSource dataSource, MeterRegistry meterRegistry, LeaderListener listener) {
        // tag::micrometer[]
        PgLeaseMetrics metrics = new PgLeaseMetrics(meterRegistry);
        PgLease pglease = PgLease.create(
                dataSource, LeaseConfig.builder().observer(metrics).build());
        Elector elector = metrics.bind(pglease.elector("payments", listener));
        // end::micrometer[]
        return pglease;
    }

    @Test
    void theSnippetExportsTheLeaderGauge() throws Exception {
        DataSource dataSource = TestDatabase.dataSource();
        PgLease.migrate(dataSource);
        SimpleMeterRegistry registry = new SimpleMeterRegistry();
        try (PgLease pglease = meteredElection(dataSource, registry, new LeaderListener() {
            @Override
            public void onElected(Leadership leadership) {}

            @Override
            public void onRevoked(Leadership leadership) {}
        })) {
            long end = System.nanoTime() + Duration.ofSeconds(15).toNanos();
            while (registry.get("pglease.leader")
                                    .tag("lease", "payments")
                                    .gauge()
                                    .value()
                            != 1
                    && System.nanoTime() - end < 0) {
                Thread.sleep(10);
            }
            assertThat(registry.get("pglease.leader")
                            .tag("lease", "payments")
                            .gauge()
                            .value())
                    .isEqualTo(1);
            assertThat(registry.get("pglease.token")
                            .tag("lease", "payments")
                            .gauge()
                            .value())
                    .isPositive();
            assertThat(pglease.leader("payments"))
                    .get()
                    .extracting(i -> i.holder())
                    .isEqualTo(pglease.holderId());
        }
    }
}
