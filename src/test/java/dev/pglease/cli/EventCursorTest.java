package dev.pglease.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.internal.sql.OperatorStatements.LeaseEvent;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Each event of lease_events is shown once, and one committed late, below an id already shown, is not skipped. */
class EventCursorTest {

    private static List<LeaseEvent> events(long... ids) {
        return Arrays.stream(ids)
                .mapToObj(id -> new LeaseEvent(id, "l", null, "acquired", id, "h", null, "login"))
                .toList();
    }

    private static List<Long> ids(List<LeaseEvent> events) {
        return events.stream().map(LeaseEvent::id).toList();
    }

    @Test
    void eventsBeforeTheStartAreNotShownAndEachLaterOneOnce() {
        EventCursor cursor = new EventCursor(3);
        assertThat(ids(cursor.accept(events(2, 3, 4, 5), 0))).containsExactly(4L, 5L);
        assertThat(cursor.after()).isEqualTo(5);
        assertThat(ids(cursor.accept(events(5, 6), 1))).containsExactly(6L);
    }

    @Test
    void anIdCommittedAfterAHigherOneIsShownWhenItArrives() {
        EventCursor cursor = new EventCursor(0);
        assertThat(ids(cursor.accept(events(1, 3), 0))).containsExactly(1L, 3L);
        assertThat(cursor.after()).as("reads again from below the missing id 2").isEqualTo(1);
        assertThat(ids(cursor.accept(events(3, 4), 1_000))).containsExactly(4L);
        assertThat(ids(cursor.accept(events(2, 3, 4), 2_000))).containsExactly(2L);
        assertThat(cursor.after()).isEqualTo(4);
    }

    @Test
    void anIdMissingLongerThanTheGapWaitIsGivenUp() {
        EventCursor cursor = new EventCursor(0);
        cursor.accept(events(1, 3), 0);
        cursor.accept(events(3), EventCursor.GAP_WAIT_NANOS - 1);
        assertThat(cursor.after()).isEqualTo(1);
        cursor.accept(events(3), EventCursor.GAP_WAIT_NANOS);
        assertThat(cursor.after()).isEqualTo(3);
    }

    @Test
    void aSequenceMovedByHandDoesNotMakeTheCursorTrackMillionsOfIds() {
        EventCursor cursor = new EventCursor(0);
        assertThat(ids(cursor.accept(events(5_000_000), 0))).containsExactly(5_000_000L);
        assertThat(cursor.after()).isEqualTo(5_000_000);
    }
}
