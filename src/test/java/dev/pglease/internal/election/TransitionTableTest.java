package dev.pglease.internal.election;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.internal.election.CampaignState.Closed;
import dev.pglease.internal.election.CampaignState.Leading;
import dev.pglease.internal.election.CampaignState.Releasing;
import dev.pglease.internal.election.CampaignState.Standby;
import dev.pglease.internal.election.CampaignState.SteppedDown;
import dev.pglease.internal.store.LeaseStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * The election state machine as a table: each row is one state, one event, the state it leads to and what the loop
 * must do, named {@code From --what--> To}. Timings 10 s / 6 s / 2 s; "now" is a fixed ticker reading; the holder
 * is {@code me}. The last test checks the state diagram in {@link CampaignState}'s javadoc against this table.
 */
@Tag("core")
class TransitionTableTest {

    private static final long S = 1_000_000_000L;
    private static final FakeTicker CLOCK = new FakeTicker();
    private static final long NOW = CLOCK.read();
    private static final long NOW_MS = CLOCK.millis();

    private static final Waits WAITS = new Waits(10 * S, 6 * S, 2 * S, new SplittableRandom(1));

    /** One row of the table. */
    private record Row(
            String what,
            CampaignState from,
            Event event,
            Transitions.Context context,
            Class<? extends CampaignState> to,
            List<Class<? extends Effect>> effects,
            Consumer<Transitions.Step> more) {

        String name() {
            return from.getClass().getSimpleName() + " --" + what + "--> " + to.getSimpleName();
        }
    }

    private static final List<Row> TABLE = new ArrayList<>();

    // ---------------------------------------------------------------- the states and events of the rows

    private static Transitions.Context wanted() {
        return new Transitions.Context("payments", "me", WAITS, CLOCK, CLOCK, NOW, NOW_MS, true, true);
    }

    private static Transitions.Context unwanted() {
        return new Transitions.Context("payments", "me", WAITS, CLOCK, CLOCK, NOW, NOW_MS, false, true);
    }

    /** A grant of token 7 sent a second ago: its deadline is 5 s away. */
    private static final Grant G = new Grant("payments", "me", 7, CLOCK, CLOCK, NOW - S, NOW + 5 * S, NOW_MS + 5_000);
    /** A grant of token 7 whose deadline has just passed. */
    private static final Grant EXPIRED = new Grant("payments", "me", 7, CLOCK, CLOCK, NOW - 7 * S, NOW, NOW_MS);

    private static final Standby STANDBY = new Standby(NOW, 0);
    private static final Leading LEADING = new Leading(G, NOW, 0);
    /** Stepped down at its deadline: the grant of its last answered renewal expires 4 s from now (10 s lease). */
    private static final SteppedDown STEPPED_DOWN = new SteppedDown(7, NOW, NOW + 4 * S);

    private static final Releasing RELEASING = new Releasing(7, null, false, NOW, 0);
    private static final Releasing RELEASING_TO_CLOSE = new Releasing(7, null, true, NOW, 0);
    private static final Releasing HANDING_OVER = new Releasing(7, G, false, NOW, 0);

    private static Event granted(long sentAt) {
        return new Event.AcquireAnswered(
                new LeaseStore.Acquired(true, 7, "me", 0), sentAt, NOW_MS - (NOW - sentAt) / 1_000_000);
    }

    private static Event deniedBy(String holder, long waitMillis) {
        return new Event.AcquireAnswered(new LeaseStore.Acquired(false, 7, holder, waitMillis), NOW, NOW_MS);
    }

    private static Event renewed(Grant g, boolean ok, long sentAt) {
        return new Event.RenewAnswered(g, ok, sentAt, NOW_MS - (NOW - sentAt) / 1_000_000);
    }

    private static Event resumed(boolean ok, long sentAt) {
        return new Event.ResumeAnswered(7, ok, sentAt, NOW_MS - (NOW - sentAt) / 1_000_000);
    }

    private static Event fact(String holder, long token, boolean held) {
        return new Event.FactRead(new LeaseStore.Fact("payments", holder, token, held));
    }

    @SafeVarargs
    private static void row(
            CampaignState from,
            String what,
            Event event,
            Transitions.Context context,
            Class<? extends CampaignState> to,
            Consumer<Transitions.Step> more,
            Class<? extends Effect>... effects) {
        TABLE.add(new Row(what, from, event, context, to, Arrays.asList(effects), more));
    }

    @SafeVarargs
    private static void row(
            CampaignState from,
            String what,
            Event event,
            Transitions.Context context,
            Class<? extends CampaignState> to,
            Class<? extends Effect>... effects) {
        row(from, what, event, context, to, step -> {}, effects);
    }

    private static Consumer<Transitions.Step> is(CampaignState expected) {
        return step -> assertThat(step.state()).isEqualTo(expected);
    }

    private static Consumer<Transitions.Step> revokes(Grant g, String reason) {
        return step -> assertThat(step.effects()).contains(new Effect.Revoked(g, reason));
    }

    // ---------------------------------------------------------------- the table

    static {
        Transitions.Context x = wanted();

        // A standby acquires when due, and only when wanted; a notice or the end of the holder's session makes it look.
        row(STANDBY, "due", new Event.Tick(), x, Standby.class, Effect.SendAcquire.class);
        row(STANDBY, "due but not wanted", new Event.Tick(), unwanted(), Standby.class);
        row(STANDBY, "granted in time", granted(NOW), x, Leading.class, Effect.ArmDeadline.class, Effect.Elected.class);
        row(
                STANDBY,
                "granted after the deadline it would give",
                granted(NOW - 7 * S),
                x,
                Releasing.class,
                is(new Releasing(7, null, false, NOW, 0)),
                Effect.Log.class);
        row(STANDBY, "granted while not wanted", granted(NOW), unwanted(), Releasing.class, Effect.Log.class);
        row(
                STANDBY,
                "denied, the database names it (a grant whose answer was lost)",
                deniedBy("me", 9_000),
                x,
                Releasing.class,
                Effect.Log.class);
        row(
                STANDBY,
                "denied, held by another for 3 s",
                deniedBy("other", 3_000),
                x,
                Standby.class,
                step -> assertThat(((Standby) step.state()).nextAt() - NOW).isBetween(3 * S, 3 * S + 10_000_000));
        row(
                STANDBY,
                "acquire failed",
                new Event.AcquireFailed(),
                x,
                Standby.class,
                is(new Standby(NOW + Waits.MIN_STANDBY_SLEEP_NANOS, 1)));
        row(STANDBY, "notified", new Event.Notice(), x, Standby.class, Effect.LookAgain.class);
        row(STANDBY, "notified while not wanted", new Event.Notice(), unwanted(), Standby.class);
        row(
                new Standby(NOW + 9 * S, 0),
                "re-read: held by another (a fake notification)",
                fact("other", 8, true),
                x,
                Standby.class,
                is(new Standby(NOW + 9 * S, 0)));
        row(
                new Standby(NOW + 9 * S, 0),
                "re-read: released",
                fact(null, 8, false),
                x,
                Standby.class,
                is(new Standby(NOW, 0)));
        row(
                new Standby(NOW + 9 * S, 0),
                "re-read: expired",
                fact("other", 8, false),
                x,
                Standby.class,
                is(new Standby(NOW, 0)));
        row(
                new Standby(NOW + 9 * S, 0),
                "holder's session lock freed",
                new Event.HolderGone(),
                x,
                Standby.class,
                is(new Standby(NOW, 0)));
        row(
                new Standby(NOW + 9 * S, 0),
                "wanted again",
                new Event.WantedChanged(),
                x,
                Standby.class,
                is(new Standby(NOW, 0)));
        row(STANDBY, "closed", new Event.Close(), x, Closed.class, Effect.Finished.class);
        row(
                STANDBY,
                "a renewal in flight when it stepped down is answered: still listed",
                renewed(G, true, NOW),
                x,
                Releasing.class,
                is(new Releasing(7, null, false, NOW, 0)));

        // A leader renews when due; the database's no ends it at once; a notice is never a reason to renew.
        row(LEADING, "due", new Event.Tick(), x, Leading.class, Effect.SendRenew.class);
        row(new Leading(G, NOW + S, 0), "not due", new Event.Tick(), x, Leading.class);
        row(
                LEADING,
                "renewed in time",
                renewed(G, true, NOW - S / 2),
                x,
                Leading.class,
                is(new Leading(G, NOW - S / 2 + 2 * S, 0)),
                Effect.Extended.class,
                Effect.ArmDeadline.class);
        row(
                LEADING,
                "renewal answered after its deadline",
                renewed(G, true, NOW - 6 * S),
                x,
                SteppedDown.class,
                revokes(G, Transitions.ANSWERED_LATE),
                Effect.Revoked.class);
        row(
                LEADING,
                "renewal refused",
                renewed(G, false, NOW),
                x,
                Standby.class,
                revokes(G, "the database no longer lists this holder with token 7"),
                Effect.Revoked.class);
        row(LEADING, "renewal failed", new Event.RenewFailed(G), x, Leading.class, is(new Leading(G, NOW + S / 4, 1)));
        row(
                new Leading(EXPIRED, NOW, 0),
                "renew deadline passed",
                new Event.Deadline(),
                x,
                SteppedDown.class,
                revokes(EXPIRED, Transitions.DEADLINE_PASSED),
                Effect.Revoked.class);
        row(LEADING, "deadline check before the deadline", new Event.Deadline(), x, Leading.class);
        row(LEADING, "notified", new Event.Notice(), x, Leading.class, Effect.LookAgain.class);
        row(
                LEADING,
                "re-read: still its own (a fake notification)",
                fact("me", 7, true),
                x,
                Leading.class,
                is(LEADING));
        row(LEADING, "re-read: another token", fact("other", 8, true), x, Standby.class, Effect.Revoked.class);
        row(LEADING, "re-read: force released", fact(null, 8, false), x, Standby.class, Effect.Revoked.class);
        row(
                LEADING,
                "a fence was refused",
                new Event.Lost(7, "fence"),
                x,
                Standby.class,
                revokes(G, "fence"),
                Effect.Revoked.class);
        row(
                LEADING,
                "its fast-failover session ended",
                new Event.Lost(7, "session"),
                x,
                Standby.class,
                Effect.Revoked.class);
        row(LEADING, "another token was lost", new Event.Lost(6, "fence"), x, Leading.class);
        row(
                LEADING,
                "closed",
                new Event.Close(),
                x,
                Releasing.class,
                is(new Releasing(7, null, true, NOW, 0)),
                Effect.Revoked.class);
        row(
                LEADING,
                "no longer wanted: hands over",
                new Event.WantedChanged(),
                unwanted(),
                Releasing.class,
                is(new Releasing(7, G, false, NOW, 0)),
                Effect.HandOver.class);

        // Stepped down at the deadline: one more renewal of the same token decides.
        row(STEPPED_DOWN, "due", new Event.Tick(), x, SteppedDown.class, Effect.SendResume.class);
        row(
                STEPPED_DOWN,
                "resume renewal answered in time",
                resumed(true, NOW),
                x,
                Leading.class,
                step -> assertThat(((Leading) step.state()).grant().token()).isEqualTo(7),
                Effect.Log.class,
                Effect.ArmDeadline.class,
                Effect.Elected.class);
        row(STEPPED_DOWN, "resume renewal answered late", resumed(true, NOW - 6 * S), x, Releasing.class);
        row(STEPPED_DOWN, "resume renewal refused", resumed(false, NOW), x, Standby.class);
        row(
                STEPPED_DOWN,
                "resume renewal failed: tried again later",
                new Event.ResumeFailed(7),
                x,
                SteppedDown.class,
                step -> {
                    assertThat(((SteppedDown) step.state()).nextAt()).isGreaterThan(NOW);
                    assertThat(((SteppedDown) step.state()).token()).isEqualTo(7);
                });
        row(
                new SteppedDown(7, NOW, NOW),
                "resume renewal failed at the grant's expiry: acquires afresh, gives nothing back",
                new Event.ResumeFailed(7),
                x,
                Standby.class,
                step -> assertThat(((Standby) step.state()).nextAt()).isGreaterThan(NOW));
        row(
                STEPPED_DOWN,
                "resume renewal failed while not wanted",
                new Event.ResumeFailed(7),
                unwanted(),
                Releasing.class,
                step -> assertThat(((Releasing) step.state()).failures()).isEqualTo(1));
        row(
                STEPPED_DOWN,
                "resume renewal answered in time while not wanted",
                resumed(true, NOW),
                unwanted(),
                Releasing.class);
        row(
                STEPPED_DOWN,
                "the renewal in flight at the step-down is answered",
                renewed(G, true, NOW - 6 * S),
                x,
                SteppedDown.class,
                is(new SteppedDown(7, NOW, NOW + 4 * S)));
        row(STEPPED_DOWN, "re-read: another holder", fact("other", 8, true), x, Standby.class);
        row(STEPPED_DOWN, "its fast-failover session ended", new Event.Lost(7, "session"), x, Standby.class);
        row(STEPPED_DOWN, "closed", new Event.Close(), x, Releasing.class, is(new Releasing(7, null, true, NOW, 0)));
        row(STEPPED_DOWN, "no longer wanted", new Event.WantedChanged(), unwanted(), Releasing.class);

        // Releasing: gives the token back; a hand-over waits for its listener first.
        row(RELEASING, "due", new Event.Tick(), x, Releasing.class, Effect.SendRelease.class);
        row(
                HANDING_OVER,
                "due while the listener finishes: renews the grant",
                new Event.Tick(),
                x,
                Releasing.class,
                Effect.SendRenew.class);
        row(
                HANDING_OVER,
                "renewed in time while the listener finishes",
                renewed(G, true, NOW),
                x,
                Releasing.class,
                step -> {
                    Releasing r = (Releasing) step.state();
                    assertThat(r.handingOver()).isSameAs(G);
                    assertThat(r.nextAt()).isEqualTo(NOW + 2 * S);
                },
                Effect.Extended.class,
                Effect.ArmDeadline.class);
        row(
                HANDING_OVER,
                "renewal failed while the listener finishes",
                new Event.RenewFailed(G),
                x,
                Releasing.class,
                step -> {
                    Releasing r = (Releasing) step.state();
                    assertThat(r.handingOver()).isSameAs(G);
                    assertThat(r.failures()).isEqualTo(1);
                });
        row(
                HANDING_OVER,
                "renewal answered late while the listener finishes",
                renewed(G, true, NOW - 6 * S),
                x,
                Releasing.class,
                is(RELEASING),
                Effect.Ended.class);
        row(
                HANDING_OVER,
                "renewal refused while the listener finishes",
                renewed(G, false, NOW),
                x,
                Standby.class,
                Effect.Ended.class);
        row(
                new Releasing(7, EXPIRED, false, NOW, 0),
                "deadline passed while the listener finishes",
                new Event.Deadline(),
                x,
                Releasing.class,
                is(RELEASING),
                Effect.Ended.class);
        row(
                HANDING_OVER,
                "re-read: still its own while the listener finishes",
                fact("me", 7, true),
                x,
                Releasing.class,
                is(HANDING_OVER));
        row(
                HANDING_OVER,
                "re-read: force released while the listener finishes",
                fact(null, 7, false),
                x,
                Standby.class,
                Effect.Ended.class);
        row(
                HANDING_OVER,
                "notified while the listener finishes",
                new Event.Notice(),
                x,
                Releasing.class,
                Effect.LookAgain.class);
        row(
                HANDING_OVER,
                "the listener returned",
                new Event.HandOverDone(G),
                x,
                Releasing.class,
                is(RELEASING),
                Effect.Ended.class);
        row(
                RELEASING,
                "released, campaign goes on",
                new Event.ReleaseAnswered(7, true),
                x,
                Standby.class,
                is(new Standby(NOW, 0)));
        row(
                RELEASING,
                "release refused (the grant is gone, or the row lists me under another login): acquires a retry period later",
                new Event.ReleaseAnswered(7, false),
                x,
                Standby.class,
                step -> assertThat(((Standby) step.state()).nextAt()).isGreaterThanOrEqualTo(NOW + 2 * S));
        row(
                RELEASING_TO_CLOSE,
                "released after close",
                new Event.ReleaseAnswered(7, true),
                x,
                Closed.class,
                Effect.Finished.class);
        row(
                RELEASING,
                "release failed",
                new Event.ReleaseFailed(7),
                x,
                Releasing.class,
                step -> assertThat(((Releasing) step.state()).failures()).isEqualTo(1));
        row(
                HANDING_OVER,
                "closed while the listener finishes",
                new Event.Close(),
                x,
                Releasing.class,
                is(RELEASING_TO_CLOSE),
                Effect.Ended.class);
        row(
                HANDING_OVER,
                "a fence was refused while the listener finishes",
                new Event.Lost(7, "fence"),
                x,
                Releasing.class,
                Effect.Ended.class);

        // Closed: nothing, but a grant that arrives after the close is given back.
        row(
                new Closed(),
                "granted after close",
                granted(NOW),
                x,
                Releasing.class,
                is(RELEASING_TO_CLOSE),
                Effect.Log.class);
        row(new Closed(), "due", new Event.Tick(), x, Closed.class);
        row(new Closed(), "notified", new Event.Notice(), x, Closed.class);
        row(new Closed(), "denied after close", deniedBy("other", 1_000), x, Closed.class);
    }

    @TestFactory
    Stream<DynamicTest> eachRowOfTheTableHolds() {
        return TABLE.stream()
                .map(r -> DynamicTest.dynamicTest(r.name(), () -> {
                    Transitions.Step step = Transitions.next(r.from(), r.event(), r.context());
                    assertThat(step.state()).as("next state").isInstanceOf(r.to());
                    assertThat(step.effects().stream().map(Object::getClass).toList())
                            .as("effects")
                            .isEqualTo(r.effects());
                    r.more().accept(step);
                }));
    }

    private static final Pattern EDGE = Pattern.compile("^ \\* (\\w+)\\s+--(.+?)-->\\s+(\\w+)\\s*$");

    @Test
    void theDiagramNamesEveryStateAndExactlyTheChangesOfStateTheTableMakes() throws Exception {
        String source = Files.readString(Path.of("src/main/java/dev/pglease/internal/election/CampaignState.java"));
        Set<String> drawnStates = new TreeSet<>();
        Set<String> drawnEdges = new TreeSet<>();
        for (String line : source.lines().toList()) {
            Matcher m = EDGE.matcher(line);
            if (m.matches()) {
                drawnStates.add(m.group(1));
                drawnStates.add(m.group(3));
                drawnEdges.add(m.group(1) + " -> " + m.group(3));
            }
        }
        Set<String> states = new TreeSet<>();
        for (Class<?> c : CampaignState.class.getPermittedSubclasses()) {
            states.add(c.getSimpleName());
        }
        Set<String> tableEdges = new TreeSet<>();
        Set<String> tableStates = new TreeSet<>();
        for (Row r : TABLE) {
            String from = r.from().getClass().getSimpleName();
            tableStates.add(from);
            if (!from.equals(r.to().getSimpleName())) {
                tableEdges.add(from + " -> " + r.to().getSimpleName());
            }
        }
        assertThat(drawnStates).as("states in the diagram").isEqualTo(states);
        assertThat(tableStates).as("states the table starts from").isEqualTo(states);
        assertThat(drawnEdges).as("edges in the diagram").isEqualTo(tableEdges);
    }
}
