package dev.pglease.internal.election;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseObserver;
import dev.pglease.Ticker;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The send time the election loop tells its observer is a wall-clock reading taken before the statement ran,
 * however the process is stopped: between the answer and the observer's own clock reading, during the statement
 * with the monotonic clock standing still, or with a slow monotonic clock. 10 s lease, 6 s renew deadline, 2 s retry.
 */
@Tag("core")
class ObservedSendTimeTest {

    private final FakeTicker clock = new FakeTicker();
    private final InMemoryLeaseStore store = new InMemoryLeaseStore(clock);
    /** The wall-clock time (epoch ms) at which the last statement ran on the server. */
    private long ranAt;
    /** How long the process is stopped after the loop measured a latency, before the observer reads its clock. */
    private Duration stopBeforeTheObserverReadsItsClock = Duration.ZERO;
    /** Per reported statement: {sentAt, ran at, the observer's own wall-clock reading}, epoch ms. */
    private final List<long[]> reports = new ArrayList<>();

    private final LeaseObserver observer = new LeaseObserver() {
        @Override
        public void acquireAttempted(String lease, boolean granted, long token, Duration latency, Instant sentAt) {
            report(sentAt);
        }

        @Override
        public void renewed(String lease, long token, Duration latency, Instant sentAt) {
            report(sentAt);
        }

        private void report(Instant sentAt) {
            clock.advance(stopBeforeTheObserverReadsItsClock);
            reports.add(new long[] {sentAt.toEpochMilli(), ranAt, clock.millis()});
        }
    };

    private ElectionLoop loopTimedBy(Ticker ticker) {
        LeaseConfig config = LeaseConfig.builder()
                .ticker(ticker)
                .wallClock(clock)
                .observer(observer)
                .build();
        ElectionLoop loop = new ElectionLoop(
                store, "me", config, ElectionLoopTest.timings(config), new SplittableRandom(42), Runnable::run, null);
        loop.join("payments", new LeaderListener() {
            @Override
            public void onElected(Leadership l) {}

            @Override
            public void onRevoked(Leadership l) {}
        });
        return loop;
    }

    /** The next statement runs on the server 4 ms after it was sent; then {@code beforeTheAnswer} happens. */
    private void nextStatementRunsThen(Runnable beforeTheAnswer) {
        store.duringNextStatement = () -> {
            clock.advanceMillis(4);
            ranAt = clock.millis();
            beforeTheAnswer.run();
        };
    }

    private void assertTheLastReportBoundsTheStatement() {
        long[] r = reports.get(reports.size() - 1);
        assertThat(r[0]).as("sent at, against when the statement ran").isLessThanOrEqualTo(r[1]);
        assertThat(r[2])
                .as("the observer's clock, against when the statement ran")
                .isGreaterThanOrEqualTo(r[1]);
    }

    @Test
    void anAcquireAnsweredJustBeforeTheProcessStopsIsReportedAsSentBeforeItRan() {
        ElectionLoop loop = loopTimedBy(clock);
        nextStatementRunsThen(() -> {});
        stopBeforeTheObserverReadsItsClock = Duration.ofSeconds(2);
        loop.runOnce();
        assertTheLastReportBoundsTheStatement();
    }

    @Test
    void aRenewalAnsweredJustBeforeTheProcessStopsIsReportedAsSentBeforeItRan() {
        ElectionLoop loop = loopTimedBy(clock);
        loop.runOnce();
        clock.advance(Duration.ofSeconds(2));
        nextStatementRunsThen(() -> {});
        stopBeforeTheObserverReadsItsClock = Duration.ofSeconds(2);
        loop.runOnce();
        assertThat(store.statements.get(store.statements.size() - 1)).startsWith("renew");
        assertTheLastReportBoundsTheStatement();
    }

    @Test
    void aResumeRenewalAnsweredJustBeforeTheProcessStopsIsReportedAsSentBeforeItRan() {
        ElectionLoop loop = loopTimedBy(clock);
        loop.runOnce();
        clock.advance(Duration.ofSeconds(2));
        store.duringNextStatement = () -> clock.advance(Duration.ofSeconds(7)); // answered late: a step-down
        loop.runOnce();
        nextStatementRunsThen(() -> {});
        stopBeforeTheObserverReadsItsClock = Duration.ofSeconds(2);
        loop.runOnce(); // the resume renewal (Turn.resume)
        assertTheLastReportBoundsTheStatement();
    }

    @Test
    void aRenewalInFlightWhileTheMonotonicClockStandsStillIsReportedAsSentBeforeItRan() {
        ElectionLoop loop = loopTimedBy(clock);
        loop.runOnce();
        clock.advance(Duration.ofSeconds(2));
        nextStatementRunsThen(() -> clock.advanceWallOnly(Duration.ofSeconds(2))); // suspended after it ran
        loop.runOnce();
        assertTheLastReportBoundsTheStatement();
    }

    @Test
    void anAcquireTimedByAMonotonicClockAtHalfRateIsReportedAsSentBeforeItRan() {
        ElectionLoop loop = loopTimedBy(() -> clock.read() / 2);
        nextStatementRunsThen(() -> clock.advanceMillis(400)); // a slow answer
        loop.runOnce();
        assertTheLastReportBoundsTheStatement();
    }
}
