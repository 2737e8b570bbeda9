package dev.pglease.internal.election;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A suspended machine (a paused virtual machine, a closed laptop lid) stops the monotonic clock while real time goes
 * on. A holder that resumes after its renew deadline passed in real time must know it no longer leads, although its
 * monotonic clock says almost no time went by. 10 s lease, 6 s renew deadline, 2 s retry period.
 */
@Tag("core")
class SuspendTest {

    private final FakeTicker clock = new FakeTicker();
    private final InMemoryLeaseStore store = new InMemoryLeaseStore(clock);
    private final List<String> events = new ArrayList<>();
    private final ElectionLoop loop = new ElectionLoop(
            store,
            "me",
            LeaseConfig.builder().ticker(clock).wallClock(clock).build(),
            ElectionLoopTest.timings(LeaseConfig.defaults()),
            new SplittableRandom(1),
            Runnable::run,
            null);
    private final Campaign campaign = loop.join("payments", new LeaderListener() {
        @Override
        public void onElected(Leadership l) {
            events.add("elected " + l.token());
        }

        @Override
        public void onRevoked(Leadership l) {
            events.add("revoked " + l.token() + ": " + l.revocationReason());
        }
    });

    @Test
    void aHolderResumedAfterASuspendLongerThanItsDeadlineNoLongerLeads() {
        loop.runOnce();
        Leadership l = campaign.grant();
        assertThat(l.isValid()).isTrue();

        clock.advanceWallOnly(Duration.ofSeconds(30));

        assertThat(l.isValid())
                .as("valid after 30 s of real time with the monotonic clock stopped")
                .isFalse();
        assertThat(l.remaining()).isEqualTo(Duration.ZERO);
        loop.checkDeadlines();
        assertThat(events)
                .containsExactly("elected 1", "revoked 1: its renew deadline passed without a successful " + "renewal");
    }

    @Test
    void aShortSuspendWithinTheDeadlineCostsNothing() {
        loop.runOnce();
        Leadership l = campaign.grant();
        clock.advanceWallOnly(Duration.ofSeconds(5));
        assertThat(l.isValid()).isTrue();
        assertThat(l.remaining()).as("what is left in real time").isEqualTo(Duration.ofSeconds(1));
        loop.runOnce();
        assertThat(l.isValid()).isTrue();
        assertThat(events).containsExactly("elected 1");
    }

    @Test
    void aBackwardStepOfTheWallClockChangesNothing() {
        loop.runOnce();
        Leadership l = campaign.grant();
        clock.advanceWallOnly(Duration.ofHours(-1));
        assertThat(l.isValid()).isTrue();
        clock.advance(Duration.ofSeconds(6));
        assertThat(l.isValid()).as("the monotonic deadline still ends it").isFalse();
    }
}
