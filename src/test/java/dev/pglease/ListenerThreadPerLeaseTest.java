package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * {@link LeaderListener} promises: "Callbacks for one lease run in order on a dedicated thread, never on the election
 * thread, so a slow or throwing callback can not delay renewals". A slow callback of one lease must then not delay
 * the callbacks of another lease of the same {@code PgLease}: a common way to use an elector is to run the leader's
 * work inside {@code onElected} while the grant is valid.
 *
 * <p>On main the listeners of every lease of a {@code PgLease} share four threads: four leaders working inside
 * {@code onElected} take them all, and a fifth lease's {@code onElected} (and later {@code onRevoked}) is never called
 * while they work, although that process leads the fifth lease.
 */
class ListenerThreadPerLeaseTest {

    @Test
    void aSlowCallbackOfOneLeaseDoesNotDelayTheCallbacksOfAnotherLease() throws Exception {
        String schema = TestDatabase.freshSchema();
        CountDownLatch stop = new CountDownLatch(1);
        CountDownLatch fifthElected = new CountDownLatch(1);
        List<Elector> electors = new ArrayList<>();
        try (PgLease pglease = PgLease.create(
                TestDatabase.dataSource(), LeaseConfig.builder().schema(schema).build())) {
            for (int i = 1; i <= 4; i++) {
                electors.add(pglease.elector("worker-" + i, new LeaderListener() {
                    @Override
                    public void onElected(Leadership leadership) {
                        try {
                            while (leadership.isValid() && !stop.await(10, TimeUnit.MILLISECONDS)) {
                                // the leader's work, for as long as it leads
                            }
                        } catch (InterruptedException e) {
                            Thread.currentThread().interrupt();
                        }
                    }

                    @Override
                    public void onRevoked(Leadership leadership) {}
                }));
            }
            for (Elector e : electors) {
                assertThat(e.awaitLeadership(Duration.ofSeconds(10))).isPresent();
            }
            Elector fifth = pglease.elector("reports", new LeaderListener() {
                @Override
                public void onElected(Leadership leadership) {
                    fifthElected.countDown();
                }

                @Override
                public void onRevoked(Leadership leadership) {}
            });
            electors.add(fifth);
            assertThat(fifth.awaitLeadership(Duration.ofSeconds(10)))
                    .as("this process leads lease \"reports\"")
                    .isPresent();
            try {
                assertThat(fifthElected.await(5, TimeUnit.SECONDS))
                        .as("lease \"reports\"'s onElected was called within 5 s of its grant, while four other "
                                + "leases' callbacks were busy")
                        .isTrue();
            } finally {
                stop.countDown();
                electors.forEach(Elector::close);
            }
        }
    }
}
