package dev.pglease.internal.election;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The property the scale benchmark relies on: a node's leases, granted at different moments, converge on one renew
 * statement per retry period that carries all of them (10 s lease, 6 s renew deadline, 2 s retry period, fake clock).
 */
@Tag("core")
class RenewBatchingBenchTest {

    private static final LeaderListener QUIET = new LeaderListener() {
        @Override
        public void onElected(Leadership l) {}

        @Override
        public void onRevoked(Leadership l) {}
    };

    @Test
    void leasesGrantedAtDifferentTimesAreRenewedInOneStatementPerRetryPeriod() {
        FakeTicker ticker = new FakeTicker();
        InMemoryLeaseStore store = new InMemoryLeaseStore(ticker);
        LeaseConfig config =
                LeaseConfig.builder().ticker(ticker).wallClock(ticker).build();
        ElectionLoop loop = new ElectionLoop(
                store, "node", config, ElectionLoopTest.timings(config), new SplittableRandom(7), Runnable::run, null);
        for (int i = 0; i < 5; i++) {
            loop.join("shard-" + i, QUIET);
            loop.runOnce();
            ticker.advanceMillis(350); // grants spread over 1.75 s of a 2 s retry period
        }
        for (int step = 0; step < 40; step++) { // 4 s to settle
            ticker.advanceMillis(100);
            loop.runOnce();
        }
        store.statements.clear();
        for (int step = 0; step < 80; step++) { // 8 s = 4 retry periods
            ticker.advanceMillis(100);
            loop.runOnce();
        }
        List<String> renews =
                store.statements.stream().filter(s -> s.startsWith("renew")).toList();
        assertThat(renews)
                .as("renew statements in 4 retry periods")
                .hasSizeBetween(4, 5)
                .allMatch("renew 5"::equals);
        assertThat(loop.campaigns()).allMatch(c -> c.state() instanceof CampaignState.Leading);
    }
}
