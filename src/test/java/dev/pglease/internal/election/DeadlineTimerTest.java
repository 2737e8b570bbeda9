package dev.pglease.internal.election;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.internal.store.LeaseStore;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.random.RandomGenerator;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The deadline timer steps a leader down at its local deadline while the election thread is stuck in a renew
 * statement that never answers (a blackholed connection), on the real monotonic clock.
 */
@Tag("core")
class DeadlineTimerTest {

    @Test
    void theLeaderIsRevokedAtItsDeadlineWhileTheRenewStatementHangs() throws Exception {
        CountDownLatch renewEntered = new CountDownLatch(1);
        CountDownLatch unblock = new CountDownLatch(1);
        LeaseStore hanging = new LeaseStore() {
            @Override
            public LeaseStore.Acquired acquire(String name, String holder, Duration ttl) {
                return new LeaseStore.Acquired(true, 1, holder, 0);
            }

            @Override
            public LeaseStore.Renewal renew(String holder, List<LeaseStore.Held> leases) throws SQLException {
                renewEntered.countDown();
                try {
                    unblock.await(30, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                throw new SQLException("connection reset", "08006");
            }

            @Override
            public boolean release(String name, String holder, long token) {
                return true;
            }

            @Override
            public List<LeaseStore.Fact> read(java.util.Collection<String> names) {
                return List.of();
            }

            @Override
            public void close() {}
        };
        LeaseConfig config = LeaseConfig.builder()
                .leaseDuration(Duration.ofMillis(600))
                .renewDeadline(Duration.ofMillis(400))
                .retryPeriod(Duration.ofMillis(100))
                .build();
        ScheduledExecutorService timer = Executors.newSingleThreadScheduledExecutor();
        CountDownLatch revoked = new CountDownLatch(1);
        long[] revokedAt = new long[1];
        ElectionLoop loop = new ElectionLoop(
                hanging,
                "me",
                config,
                ElectionLoopTest.timings(config),
                RandomGenerator.getDefault(),
                Runnable::run,
                timer);
        try {
            Campaign campaign = loop.join("stuck", new LeaderListener() {
                @Override
                public void onElected(Leadership l) {}

                @Override
                public void onRevoked(Leadership l) {
                    revokedAt[0] = System.nanoTime();
                    revoked.countDown();
                }
            });
            loop.start();
            assertThat(renewEntered.await(5, TimeUnit.SECONDS))
                    .as("the loop is blocked in a renewal")
                    .isTrue();
            Grant l = campaign.grant();
            if (l == null) {
                assertThat(revoked.getCount())
                        .as("already revoked at the deadline")
                        .isZero();
            } else {
                long deadline = l.deadline();
                assertThat(revoked.await(5, TimeUnit.SECONDS))
                        .as("revoked while the statement still hangs")
                        .isTrue();
                assertThat(unblock.getCount()).isEqualTo(1);
                assertThat(revokedAt[0] - deadline)
                        .as("revoked at the deadline, not after the statement")
                        .isBetween(0L, TimeUnit.MILLISECONDS.toNanos(200));
                assertThat(l.isValid()).isFalse();
            }
        } finally {
            unblock.countDown();
            loop.close();
            timer.shutdownNow();
        }
    }
}
