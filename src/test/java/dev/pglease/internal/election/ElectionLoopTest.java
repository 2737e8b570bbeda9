package dev.pglease.internal.election;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.internal.util.Timings;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The election state machine driven step by step with a fake monotonic clock: 10 s lease, 6 s renew deadline,
 * 2 s retry period. Callbacks run inline so the order of events is exact.
 */
@Tag("core")
class ElectionLoopTest {

    private final FakeTicker ticker = new FakeTicker();
    private final InMemoryLeaseStore store = new InMemoryLeaseStore(ticker);
    private final List<String> events = new ArrayList<>();
    private ElectionLoop loop;
    private Campaign campaign;

    private final LeaderListener listener = new LeaderListener() {
        @Override
        public void onElected(Leadership l) {
            events.add("elected " + l.token());
        }

        @Override
        public void onRevoked(Leadership l) {
            events.add("revoked " + l.token() + ": " + l.revocationReason());
        }
    };

    @BeforeEach
    void start() {
        loop = loopOn(store, ticker);
        campaign = loop.join("payments", listener);
    }

    /** A loop holding as "me" on {@code store}, timed by {@code clock}, callbacks inline, seeded jitter. */
    private static ElectionLoop loopOn(InMemoryLeaseStore store, FakeTicker clock) {
        LeaseConfig config =
                LeaseConfig.builder().ticker(clock).wallClock(clock).build();
        return new ElectionLoop(store, "me", config, timings(config), new SplittableRandom(42), Runnable::run, null);
    }

    static Timings timings(LeaseConfig config) {
        return Timings.of(config.leaseDuration(), config.renewDeadline(), config.retryPeriod());
    }

    /** Leads, then renews at +2 s and gets the answer 7 s later, past the 6 s deadline (the database still lists it). */
    private void leadThenGetARenewalAnsweredSevenSecondsLate() {
        loop.runOnce();
        ticker.advance(Duration.ofSeconds(2));
        store.duringNextStatement = () -> ticker.advance(Duration.ofSeconds(7));
        loop.runOnce();
    }

    private Leadership leadership() {
        return campaign.grant();
    }

    @Test
    void acquiresAFreeLeaseAtOnceAndRenewsEveryRetryPeriodWithTheSameToken() {
        loop.runOnce();
        assertThat(events).containsExactly("elected 1");
        Leadership l = leadership();
        assertThat(l.isValid()).isTrue();
        assertThat(l.remaining()).isEqualTo(Duration.ofSeconds(6));

        for (int i = 0; i < 10; i++) {
            ticker.advance(Duration.ofSeconds(2));
            loop.runOnce();
        }
        assertThat(store.statements).filteredOn(s -> s.startsWith("renew")).hasSize(10);
        assertThat(leadership()).isSameAs(l);
        assertThat(l.token()).isEqualTo(1);
        assertThat(l.remaining()).isEqualTo(Duration.ofSeconds(6));
        assertThat(events).containsExactly("elected 1");
    }

    @Test
    void stepsDownAtTheDeadlineWhenTheDatabaseStopsAnswering() {
        loop.runOnce();
        Leadership l = leadership();
        store.down = true;
        long elapsed = 0;
        while (elapsed < 5_900) {
            ticker.advanceMillis(100);
            elapsed += 100;
            loop.runOnce();
            assertThat(l.isValid())
                    .as("valid %d ms after the last successful send", elapsed)
                    .isTrue();
        }
        ticker.advanceMillis(100);
        assertThat(l.isValid())
                .as("invalid at the deadline even before the loop runs")
                .isFalse();
        assertThatThrownBy(l::checkValid)
                .isInstanceOf(LeaseException.class)
                .extracting(e -> ((LeaseException) e).reason())
                .isEqualTo(LeaseException.Reason.LEASE_LOST);
        loop.checkDeadlines();
        assertThat(events)
                .containsExactly("elected 1", "revoked 1: its renew deadline passed without a successful renewal");
        assertThat(campaign.state())
                .as("stepped down, with one more renewal of token 1 to decide, tried until the grant expires (10 s"
                        + " lease, 6 s renew deadline)")
                .isEqualTo(new CampaignState.SteppedDown(1, ticker.read(), ((Grant) l).deadline() + 4_000_000_000L));
    }

    /**
     * A renewal whose answer is lost may have committed. A stepped-down holder whose renewals keep committing without
     * an answer must not keep the lease from the others for longer than its grant lasts by the last answer it heard.
     */
    @Test
    void aHolderThatNeverHearsItsRenewalsAnsweredLetsTheLeaseExpireWithinALeaseDurationOfItsLastAnswer() {
        loop.runOnce(); // elected with token 1 at 0 s: the last answer this holder hears
        store.loseRenewAnswers = true;
        long freeAfterMillis = -1;
        for (int elapsed = 100; elapsed <= 30_000 && freeAfterMillis < 0; elapsed += 100) {
            ticker.advanceMillis(100);
            loop.runOnce();
            InMemoryLeaseStore.Row row = store.rows.get("payments");
            if (row.holder() == null || row.expiresAt() - ticker.read() <= 0) {
                freeAfterMillis = elapsed;
            }
        }
        assertThat(events).startsWith("elected 1", "revoked 1: its renew deadline passed without a successful renewal");
        assertThat(freeAfterMillis)
                .as("ms after the holder's last answer until another candidate could take the lease (10 s lease,"
                        + " renewals committed without answers until the holder stopped sending them)")
                .isBetween(0L, 25_000L);
    }

    @Test
    void retriesAFailedRenewalBeforeTheDeadlineAndKeepsLeadingIfOneSucceeds() {
        loop.runOnce();
        Leadership l = leadership();
        store.down = true;
        ticker.advance(Duration.ofSeconds(2));
        loop.runOnce();
        long retryAt = loop.nextAt(campaign);
        assertThat(retryAt - ticker.read())
                .as("quick retry")
                .isBetween(1L, Duration.ofSeconds(1).toNanos());
        store.down = false;
        ticker.advance(Duration.ofNanos(retryAt - ticker.read()));
        loop.runOnce();
        assertThat(l.isValid()).isTrue();
        assertThat(l.remaining()).isEqualTo(Duration.ofSeconds(6));
        assertThat(events).containsExactly("elected 1");
    }

    @Test
    void theDeadlineCountsFromWhenTheRenewalWasSentNotWhenItWasAnswered() {
        loop.runOnce();
        Leadership l = leadership();
        ticker.advance(Duration.ofSeconds(2));
        store.duringNextStatement = () -> ticker.advance(Duration.ofSeconds(4));
        loop.runOnce();
        assertThat(l.remaining())
                .as("sent at +2 s, deadline at +8 s, now at +6 s")
                .isEqualTo(Duration.ofSeconds(2));
    }

    @Test
    void aRenewalAnsweredAfterTheDeadlineEndsThatLeadershipAndOneMoreRenewalAnsweredInTimeLeadsAgainWithTheSameToken() {
        loop.runOnce();
        Leadership l = leadership();
        ticker.advance(Duration.ofSeconds(2));
        store.duringNextStatement = () -> ticker.advance(Duration.ofSeconds(7));
        loop.runOnce();
        assertThat(l.isValid())
                .as("the leadership whose renewal came back late")
                .isFalse();
        assertThat(events).containsExactly("elected 1", "revoked 1: the renewal was answered after the renew deadline");

        loop.runOnce();
        Leadership again = leadership();
        assertThat(again).isNotSameAs(l);
        assertThat(again.token())
                .as("the database never let the lease expire: same token")
                .isEqualTo(1);
        assertThat(again.isValid()).isTrue();
        assertThat(again.remaining())
                .as("a deadline from the resume renewal's send time")
                .isEqualTo(Duration.ofSeconds(6));
        assertThat(l.isValid()).as("the old leadership stays ended").isFalse();
        assertThat(events)
                .containsExactly(
                        "elected 1", "revoked 1: the renewal was answered after the renew deadline", "elected 1");
        assertThat(store.statements).noneMatch(s -> s.startsWith("release"));
    }

    @Test
    void aStepDownByTheDeadlineTimerWhileTheRenewalIsInFlightIsFollowedByTheResumeRenewalNotARelease() {
        loop.runOnce();
        ticker.advance(Duration.ofSeconds(2));
        store.duringNextStatement = () -> {
            ticker.advance(Duration.ofSeconds(7));
            loop.checkDeadlines();
        };
        loop.runOnce();
        assertThat(events)
                .containsExactly("elected 1", "revoked 1: its renew deadline passed without a successful renewal");
        loop.runOnce();
        assertThat(events)
                .containsExactly(
                        "elected 1", "revoked 1: its renew deadline passed without a successful renewal", "elected 1");
        assertThat(store.statements).noneMatch(s -> s.startsWith("release"));
    }

    @Test
    void aResumeRenewalThatIsAlsoAnsweredLateGivesTheLeaseBack() {
        leadThenGetARenewalAnsweredSevenSecondsLate();
        store.duringNextStatement = () -> ticker.advance(Duration.ofSeconds(7));
        loop.runOnce();
        assertThat(leadership()).isNull();
        assertThat(events).containsExactly("elected 1", "revoked 1: the renewal was answered after the renew deadline");
        loop.runOnce();
        assertThat(store.statements).contains("release payments 1");
    }

    @Test
    void aResumeRenewalRefusedByTheDatabaseLeavesAStandbyWithoutARelease() {
        leadThenGetARenewalAnsweredSevenSecondsLate();
        store.takeOver("payments", "operator-moved-it");
        loop.runOnce();
        assertThat(leadership()).isNull();
        assertThat(campaign.state()).isInstanceOf(CampaignState.Standby.class);
        assertThat(events).containsExactly("elected 1", "revoked 1: the renewal was answered after the renew deadline");
        assertThat(store.statements).noneMatch(s -> s.startsWith("release"));
    }

    @Test
    void closingAfterAStepDownAtTheDeadlineReleasesTheLeaseInsteadOfResuming() {
        leadThenGetARenewalAnsweredSevenSecondsLate();
        loop.leave(campaign);
        loop.runOnce();
        assertThat(store.statements).contains("release payments 1");
        assertThat(events).containsExactly("elected 1", "revoked 1: the renewal was answered after the renew deadline");
    }

    @Test
    void aGrantAnsweredAfterTheDeadlineIsGivenBackNotUsed() {
        store.duringNextStatement = () -> ticker.advance(Duration.ofSeconds(7));
        loop.runOnce();
        assertThat(events).isEmpty();
        assertThat(campaign.grant()).isNull();
        loop.runOnce();
        assertThat(store.statements).contains("release payments 1");
    }

    @Test
    void noActionAfterTheDeadlineEvenIfTheLoopThreadIsStuck() {
        loop.runOnce();
        Leadership l = leadership();
        ticker.advance(Duration.ofSeconds(6));
        assertThat(l.isValid()).isFalse();
        assertThat(l.remaining()).isZero();
        assertThatThrownBy(l::checkValid).hasMessageContaining("renew deadline passed");
    }

    @Test
    void stepsDownAtOnceWhenTheDatabaseSaysTheLeaseWasLost() {
        loop.runOnce();
        Leadership l = leadership();
        store.takeOver("payments", "operator-moved-it");
        ticker.advance(Duration.ofSeconds(2));
        loop.runOnce();
        assertThat(l.isValid()).isFalse();
        assertThat(events)
                .containsExactly("elected 1", "revoked 1: the database no longer lists this holder with token 1");
        assertThat(store.statements).noneMatch(s -> s.startsWith("release"));
    }

    @Test
    void aStandbySleepsUntilTheReportedExpiryWhenNotificationsWork() {
        store.takeOver("payments", "other");
        loop.notificationsHealthy(true);
        loop.runOnce();
        long sleep = loop.nextAt(campaign) - ticker.read();
        assertThat(Duration.ofNanos(sleep))
                .isBetween(Duration.ofSeconds(10), Duration.ofSeconds(10).plusMillis(11));
        ticker.advance(Duration.ofNanos(sleep));
        loop.runOnce();
        assertThat(events).containsExactly("elected 2");
    }

    @Test
    void aStandbyWithoutNotificationsLooksAgainEveryRetryPeriod() {
        store.takeOver("payments", "other");
        loop.notificationsHealthy(false);
        loop.runOnce();
        long sleep = loop.nextAt(campaign) - ticker.read();
        assertThat(Duration.ofNanos(sleep))
                .isBetween(Duration.ofSeconds(2), Duration.ofSeconds(2).plusMillis(11));
    }

    @Test
    void aReleaseNotificationWakesAStandbyAtOnce() {
        store.takeOver("payments", "other");
        loop.notificationsHealthy(true);
        loop.runOnce();
        store.rows.put("payments", new InMemoryLeaseStore.Row(null, 1, ticker.read()));
        loop.notice("payments");
        assertThat(loop.nextAt(campaign)).isEqualTo(ticker.read());
        loop.runOnce();
        assertThat(events).containsExactly("elected 2");
    }

    /**
     * The release commits while the standby's acquire is on its way: the acquire's answer still names the old holder
     * and its expiry, but the notification came after it was sent. The standby must look again at once rather than
     * sleep until that expiry.
     */
    @Test
    void aReleaseNotifiedWhileAnAcquireIsInFlightIsNotOverruledByThatAcquiresAnswer() {
        store.takeOver("payments", "other");
        loop.notificationsHealthy(true);
        store.duringNextStatement = () -> loop.notice("payments");
        loop.runOnce();
        assertThat(events).isEmpty();
        assertThat(loop.nextAt(campaign)).as("looks again at once").isEqualTo(ticker.read());
        store.rows.put("payments", new InMemoryLeaseStore.Row(null, 1, ticker.read()));
        loop.runOnce();
        assertThat(events).containsExactly("elected 2");
    }

    /** The same for notifications that come back while an acquire is in flight: a release may have been missed. */
    @Test
    void notificationsComingBackWhileAnAcquireIsInFlightAreNotOverruledByThatAcquiresAnswer() {
        store.takeOver("payments", "other");
        loop.notificationsHealthy(false);
        store.duringNextStatement = () -> loop.notificationsHealthy(true);
        loop.runOnce();
        assertThat(loop.nextAt(campaign)).as("looks again at once").isEqualTo(ticker.read());
    }

    /**
     * A new process's LISTEN comes up while its first acquire is in flight: a release committed after that acquire
     * ran and before the LISTEN was never notified to it, so the acquire's answer (the old holder, its expiry) must
     * not send the standby to sleep until that expiry.
     */
    @Test
    void notificationsComingUpForTheFirstTimeWhileAnAcquireIsInFlightAreNotOverruledByThatAcquiresAnswer() {
        store.takeOver("payments", "other");
        store.duringNextStatement = () -> loop.notificationsHealthy(true);
        loop.runOnce();
        assertThat(loop.nextAt(campaign)).as("looks again at once").isEqualTo(ticker.read());
    }

    /**
     * Fast failover: the standby's acquire starts its wait on the holder's lock, and the wait ends at once (the holder
     * died during the acquire) before the acquire's answer is applied: the answer (the old holder, its expiry) must not
     * send the standby to sleep until that expiry.
     */
    @Test
    void aHolderGoneWhileAnAcquireIsInFlightIsNotOverruledByThatAcquiresAnswer() {
        store.takeOver("payments", "other");
        store.duringNextStatement = () -> loop.holderGone("payments");
        loop.runOnce();
        assertThat(loop.nextAt(campaign)).as("looks again at once").isEqualTo(ticker.read());
    }

    @Test
    void notificationsComingBackMakeAStandbyLookAtOnceEvenWhereTheMonotonicClockWraps() {
        FakeTicker nearWrap =
                new FakeTicker(Long.MAX_VALUE - Duration.ofSeconds(1).toNanos());
        InMemoryLeaseStore wrapStore = new InMemoryLeaseStore(nearWrap);
        ElectionLoop wrapLoop = loopOn(wrapStore, nearWrap);
        Campaign standby = wrapLoop.join("payments", listener);
        wrapStore.takeOver("payments", "other");
        wrapLoop.runOnce();
        assertThat(wrapLoop.nextAt(standby) - nearWrap.read())
                .as("denied: waits for the holder's expiry")
                .isGreaterThan(Duration.ofSeconds(1).toNanos());
        wrapLoop.notificationsHealthy(false);
        wrapLoop.notificationsHealthy(true);
        assertThat(wrapLoop.nextAt(standby)).as("looks again at once").isEqualTo(nearWrap.read());
    }

    @Test
    void closingALeaderEndsItLocallyFirstThenReleases() {
        loop.runOnce();
        Leadership l = leadership();
        var closed = loop.leave(campaign);
        assertThat(l.isValid()).isFalse();
        assertThat(closed).isNotDone();
        assertThat(store.statements).noneMatch(s -> s.startsWith("release"));
        loop.runOnce();
        assertThat(store.statements).contains("release payments 1");
        assertThat(closed).isDone();
        assertThat(events).containsExactly("elected 1", "revoked 1: released");
        assertThat(loop.campaigns()).isEmpty();
    }

    /**
     * A campaign that is no longer wanted (a lease group gives a shard away) hands over: its listener hears onRevoked
     * while the grant is still valid, so it can finish in-flight work; the lease is released only once the listener
     * returned; and an unwanted standby does not acquire, however often it is woken.
     */
    @Test
    void aLeaderThatIsNoLongerWantedReleasesOnlyAfterItsListenerReturnedAndDoesNotAcquireAgain() {
        java.util.ArrayDeque<Runnable> callbacks = new java.util.ArrayDeque<>();
        LeaseConfig config =
                LeaseConfig.builder().ticker(ticker).wallClock(ticker).build();
        ElectionLoop giver =
                new ElectionLoop(store, "me", config, timings(config), new SplittableRandom(1), callbacks::add, null);
        boolean[] validInOnRevoked = new boolean[1];
        Campaign shard = giver.join("shard-3", new LeaderListener() {
            @Override
            public void onElected(Leadership l) {
                events.add("elected " + l.token());
            }

            @Override
            public void onRevoked(Leadership l) {
                validInOnRevoked[0] = l.isValid();
                events.add("revoked " + l.token());
            }
        });
        giver.runOnce();
        callbacks.poll().run();
        Leadership l = shard.leadership();
        assertThat(l.isValid()).isTrue();

        giver.want(shard, false);
        giver.runOnce();
        assertThat(store.statements)
                .as("nothing released while the listener finishes")
                .noneMatch(st -> st.startsWith("release"));
        assertThat(l.isValid()).as("valid while the listener finishes").isTrue();
        callbacks.poll().run();
        assertThat(validInOnRevoked[0]).as("valid during onRevoked").isTrue();
        assertThat(l.isValid()).as("ended once the listener returned").isFalse();
        giver.runOnce();
        assertThat(store.statements).containsSubsequence("acquire shard-3 me", "release shard-3 1");
        assertThat(store.rows.get("shard-3").holder()).isNull();

        giver.notice("shard-3");
        ticker.advance(Duration.ofSeconds(30));
        giver.runOnce();
        giver.runOnce();
        assertThat(store.statements.stream().filter(st -> st.startsWith("acquire")))
                .as("acquires of an unwanted standby")
                .hasSize(1);
        assertThat(events).containsExactly("elected 1", "revoked 1");

        giver.want(shard, true);
        giver.runOnce();
        callbacks.poll().run();
        assertThat(events).containsExactly("elected 1", "revoked 1", "elected 2");
    }

    /**
     * A hand-over whose listener drains for longer than the renew deadline: the grant is renewed as a leader's is
     * until the listener returns, so it stays valid throughout and the lease never expires under the giver; only
     * then is it released.
     */
    @Test
    void aGrantBeingHandedOverIsRenewedForAsLongAsItsListenerDrains() {
        java.util.ArrayDeque<Runnable> callbacks = new java.util.ArrayDeque<>();
        LeaseConfig config =
                LeaseConfig.builder().ticker(ticker).wallClock(ticker).build();
        ElectionLoop giver =
                new ElectionLoop(store, "me", config, timings(config), new SplittableRandom(1), callbacks::add, null);
        Campaign shard = giver.join("shard-4", new LeaderListener() {
            @Override
            public void onElected(Leadership l) {}

            @Override
            public void onRevoked(Leadership l) {}
        });
        giver.runOnce();
        callbacks.poll().run();
        Leadership l = shard.leadership();
        giver.want(shard, false);
        for (int i = 0; i < 10; i++) { // 20 s: twice the lease duration, more than three renew deadlines
            ticker.advance(Duration.ofSeconds(2));
            giver.runOnce();
            assertThat(l.isValid())
                    .as("valid while the listener drains, after %d s", 2 * (i + 1))
                    .isTrue();
            assertThat(store.rows.get("shard-4").holder()).isEqualTo("me");
        }
        assertThat(store.statements).noneMatch(st -> st.startsWith("release"));
        assertThat(store.statements.stream().filter(st -> st.startsWith("renew")))
                .as("renewals while the listener drains")
                .hasSizeGreaterThanOrEqualTo(10);
        callbacks.poll().run(); // onRevoked returns
        assertThat(l.isValid()).as("ended once the listener returned").isFalse();
        giver.runOnce();
        assertThat(store.statements).last().isEqualTo("release shard-4 1");
        assertThat(store.rows.get("shard-4").holder()).isNull();
    }

    @Test
    void aGrantThatArrivesAfterTheElectorWasClosedIsReleasedNotLeaked() {
        store.duringNextStatement = () -> loop.leave(campaign);
        loop.runOnce();
        assertThat(events).isEmpty();
        assertThat(store.statements).containsExactly("acquire payments me", "release payments 1");
        assertThat(store.rows.get("payments").holder()).isNull();
        assertThat(campaign.closed).isDone();
    }

    @Test
    void manySlowAcquiresInOneTurnDoNotDelayTheRenewalOfLeasesAlreadyHeld() {
        loop.runOnce();
        Leadership first = leadership();
        for (int i = 0; i < 100; i++) {
            loop.join("shard-" + i, listener);
        }
        store.latency = Duration.ofMillis(100);
        for (int turn = 0; turn < 40; turn++) {
            long start = ticker.read();
            loop.runOnce();
            assertThat(Duration.ofNanos(ticker.read() - start))
                    .as("turn %d", turn)
                    .isLessThanOrEqualTo(Duration.ofMillis(1_300));
            assertThat(first.isValid())
                    .as("held lease still valid after turn %d", turn)
                    .isTrue();
        }
        assertThat(loop.campaigns()).allMatch(c -> c.grant() != null);
    }

    @Test
    void anAcquireWhoseAnswerWasLostIsLookedAtAgainAtOnceAndTheGrantItMayHaveMadeIsGivenBack() {
        // the statement committed, the answer never came: every other candidate now waits for a grant nobody uses
        store.loseNextAcquireAnswer = true;
        loop.runOnce();
        assertThat(leadership()).isNull();
        long lookAgainIn = loop.nextAt(campaign) - ticker.read();
        assertThat(Duration.ofNanos(lookAgainIn)).isLessThanOrEqualTo(Duration.ofMillis(10));
        ticker.advance(Duration.ofNanos(Math.max(0, lookAgainIn)));
        loop.runOnce();
        assertThat(store.statements)
                .containsExactly("acquire payments me", "acquire payments me", "release payments 1");
        assertThat(store.rows.get("payments").holder()).isNull();
    }

    @Test
    void repeatedAcquireErrorsBackOffAsBefore() {
        store.down = true;
        loop.runOnce(); // first error: a quick second look
        ticker.advance(Duration.ofNanos(Math.max(0, loop.nextAt(campaign) - ticker.read())));
        loop.runOnce(); // second error: the usual backoff, from half the retry period
        assertThat(Duration.ofNanos(loop.nextAt(campaign) - ticker.read()))
                .isBetween(Duration.ofMillis(1_000), Duration.ofMillis(1_200));
    }

    @Test
    void reCampaignsAfterAnOutageWithAHigherToken() {
        loop.runOnce();
        store.down = true;
        ticker.advance(Duration.ofSeconds(7));
        loop.runOnce();
        assertThat(leadership()).isNull();
        ticker.advance(Duration.ofSeconds(10));
        store.down = false;
        for (int i = 0; i < 5 && campaign.grant() == null; i++) {
            ticker.advance(Duration.ofNanos(Math.max(0, loop.nextAt(campaign) - ticker.read())));
            loop.runOnce();
        }
        assertThat(leadership()).isNotNull();
        assertThat(leadership().token()).isEqualTo(2);
    }
}
