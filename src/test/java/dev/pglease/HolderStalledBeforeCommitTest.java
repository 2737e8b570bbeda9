package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.testkit.InterceptedConnections;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import javax.sql.DataSource;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A lease statement and its commit are two round trips: a holder that stalls or is cut off between them (a pause, a
 * network cut) leaves its server session idle in a transaction that holds the lease row locked. The server must end
 * that transaction within the statement timeout, not when the holder comes back or TCP gives up: until then every
 * other candidate's acquire waits on the row lock and times out, and the lease is not taken over.
 */
@Tag("core")
class HolderStalledBeforeCommitTest {

    private static final long STALL_MILLIS = 6_000;

    private static final LeaderListener IGNORE = new LeaderListener() {
        @Override
        public void onElected(Leadership leadership) {}

        @Override
        public void onRevoked(Leadership leadership) {}
    };

    @Test
    void aHolderStalledBetweenItsRenewalAndItsCommitIsTakenOverSoonAfterExpiry() throws Exception {
        String schema = TestDatabase.freshSchema();
        LeaseConfig config = LeaseConfig.builder()
                .schema(schema)
                .leaseDuration(Duration.ofMillis(1000))
                .renewDeadline(Duration.ofMillis(600))
                .retryPeriod(Duration.ofMillis(200))
                .build();
        StallingCommits stalling = new StallingCommits(TestDatabase.dataSource());
        try (PgLease a = PgLease.create(
                        stalling.dataSource, config.toBuilder().holderLabel("a").build());
                Elector ea = a.elector("stalled", IGNORE)) {
            assertThat(ea.awaitLeadership(Duration.ofSeconds(10))).isPresent();
            try (PgLease b = PgLease.create(
                            TestDatabase.dataSource(),
                            config.toBuilder().holderLabel("b").build());
                    Elector eb = b.elector("stalled", IGNORE)) {
                stalling.stallNextCommit();
                assertThat(stalling.stalled.await(5, TimeUnit.SECONDS))
                        .as("a renewal reached its commit")
                        .isTrue();
                long stalledAt = System.nanoTime();
                // the row expires at most a lease duration after the stall began; the standby tries every retry period
                assertThat(eb.awaitLeadership(Duration.ofMillis(3_000)))
                        .as("the standby leads within 3 s of the holder's stall (the stall lasts %d ms)", STALL_MILLIS)
                        .isPresent();
                assertThat(System.nanoTime() - stalledAt).isLessThan(TimeUnit.MILLISECONDS.toNanos(STALL_MILLIS));
            }
        }
    }

    /** Lends connections whose next {@code commit()}, once asked, waits {@value #STALL_MILLIS} ms before it is sent. */
    static final class StallingCommits {
        private volatile boolean stallNext;
        final CountDownLatch stalled = new CountDownLatch(1);
        final DataSource dataSource;

        StallingCommits(DataSource delegate) {
            dataSource = new InterceptedConnections(delegate, method -> {
                if (method.equals("commit") && stallNext) {
                    stallNext = false;
                    stalled.countDown();
                    Thread.sleep(STALL_MILLIS);
                }
            });
        }

        void stallNextCommit() {
            stallNext = true;
        }
    }
}
