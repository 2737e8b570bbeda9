package dev.pglease.internal.election;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Bounds of every wait the election loop computes, over many seeded random draws. */
@Tag("core")
class TimingTest {

    private static final long MS = 1_000_000L;
    private final Waits timing = new Waits(10_000 * MS, 6_000 * MS, 2_000 * MS, new SplittableRandom(7));

    @Test
    void deadlineAndNextRenewalCountFromTheSendTime() {
        assertThat(timing.deadline(100)).isEqualTo(100 + 6_000 * MS);
        assertThat(timing.nextRenewal(100)).isEqualTo(100 + 2_000 * MS);
    }

    @Test
    void standbyWakesAfterTheExpiryWithAtMostTenMillisecondsOfJitter() {
        for (int i = 0; i < 10_000; i++) {
            long wake = timing.standbyWake(0, 3_000 * MS, true);
            assertThat(wake).isBetween(3_000 * MS, 3_010 * MS);
        }
    }

    @Test
    void standbyWithoutNotificationsNeverSleepsLongerThanTheRetryPeriodPlusJitter() {
        for (int i = 0; i < 10_000; i++) {
            assertThat(timing.standbyWake(0, 9_000 * MS, false)).isBetween(2_000 * MS, 2_010 * MS);
        }
    }

    @Test
    void standbyNeverSpinsOnAnExpiredOrFreeLease() {
        for (int i = 0; i < 1_000; i++) {
            assertThat(timing.standbyWake(0, 0, true)).isBetween(Waits.MIN_STANDBY_SLEEP_NANOS, 11 * MS);
        }
    }

    @Test
    void errorBackoffGrowsFromHalfTheRetryPeriodToTwiceItWithAtMostTwentyPercentJitter() {
        for (int i = 0; i < 1_000; i++) {
            assertThat(timing.errorBackoff(0, 1)).isBetween(1_000 * MS, 1_200 * MS);
            assertThat(timing.errorBackoff(0, 2)).isBetween(2_000 * MS, 2_400 * MS);
            assertThat(timing.errorBackoff(0, 50)).isBetween(4_000 * MS, 4_800 * MS);
        }
    }

    @Test
    void aFailedAcquireIsLookedAtAgainAtOnceThenBacksOffLikeAnyError() {
        for (int i = 0; i < 1_000; i++) {
            assertThat(timing.acquireRetry(0, 1)).isEqualTo(Waits.MIN_STANDBY_SLEEP_NANOS);
            assertThat(timing.acquireRetry(0, 2)).isBetween(1_000 * MS, 1_200 * MS);
            assertThat(timing.acquireRetry(0, 3)).isBetween(2_000 * MS, 2_400 * MS);
        }
    }

    @Test
    void renewRetryIsQuickAndNeverPastTheDeadline() {
        assertThat(timing.renewRetry(0, 1, 6_000 * MS)).isEqualTo(250 * MS);
        assertThat(timing.renewRetry(0, 2, 6_000 * MS)).isEqualTo(500 * MS);
        assertThat(timing.renewRetry(0, 9, 6_000 * MS)).isEqualTo(1_000 * MS);
        assertThat(timing.renewRetry(5_900 * MS, 3, 6_000 * MS)).isEqualTo(6_000 * MS);
    }

    @Test
    void renewRetryIsQuickAndNeverPastTheDeadlineWhereTheMonotonicClockWraps() {
        long now = Long.MAX_VALUE - 1_000 * MS;
        assertThat(timing.renewRetry(now, 1, now + 6_000 * MS))
                .as("the deadline wraps, the retry does not")
                .isEqualTo(now + 250 * MS);
        long late = Long.MAX_VALUE - 100 * MS;
        assertThat(timing.renewRetry(late, 1, late + 50 * MS))
                .as("the retry wraps, the deadline does not")
                .isEqualTo(late + 50 * MS);
    }

    @Test
    void subSecondTimingsWork() {
        Waits fast = new Waits(500 * MS, 300 * MS, 100 * MS, new SplittableRandom(1));
        assertThat(fast.deadline(0)).isEqualTo(300 * MS);
        assertThat(fast.standbyWake(0, 200 * MS, true)).isBetween(200 * MS, 210 * MS);
        assertThat(Duration.ofNanos(fast.renewRetry(0, 1, 300 * MS)))
                .isEqualTo(Duration.ofMillis(12).plusNanos(500_000));
    }
}
