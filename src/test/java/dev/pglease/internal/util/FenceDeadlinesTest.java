package dev.pglease.internal.util;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.TestDatabase;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The client-side bound of fenced transactions on its own (no server-side bound is set here): a transaction still
 * open at its deadline has its connection aborted; one that ended, began to commit, or whose connection went back
 * to its owner is never touched.
 */
@Tag("core")
class FenceDeadlinesTest {

    private static final Duration BOUND = Duration.ofMillis(300);
    private static FenceDeadlines deadlines;

    @BeforeAll
    static void start() {
        deadlines = new FenceDeadlines("fence-deadlines-test");
    }

    @AfterAll
    static void stop() {
        deadlines.close();
    }

    private static Connection inTransaction() throws SQLException {
        Connection c = TestDatabase.dataSource().getConnection();
        c.setAutoCommit(false);
        try (Statement s = c.createStatement()) {
            s.execute("SELECT 1");
        }
        return c;
    }

    private static void waitPastTheDeadline() throws InterruptedException {
        Thread.sleep(BOUND.plus(FenceDeadlines.GRACE_MAX).plusMillis(300).toMillis());
    }

    @Test
    void aTransactionStillOpenAtItsDeadlineHasItsConnectionAborted() throws Exception {
        try (Connection c = inTransaction()) {
            FenceDeadlines.Watch watch = deadlines.watch(c, "payments", 7, BOUND);
            Awaitility.await().atMost(Duration.ofSeconds(5)).until(watch::aborted);
            Throwable next = catchThrowable(() -> {
                try (Statement s = c.createStatement()) {
                    s.execute("SELECT 1");
                }
            });
            assertThat(next).as("the next statement on the aborted connection").isInstanceOf(SQLException.class);
            assertThat(FenceDeadlines.aborted(c)).containsSame(watch);
            assertThat(FenceDeadlines.beginCommit(c))
                    .as("no commit after the abort")
                    .containsSame(watch);
            assertThat(FenceDeadlines.end(c)).containsSame(watch);
            assertThat(watch.describe()).contains("payments", "token 7", "aborted");
        }
    }

    @Test
    void aTransactionThatEndedOrBeganToCommitIsNotAborted() throws Exception {
        try (Connection ended = inTransaction();
                Connection committing = inTransaction()) {
            FenceDeadlines.Watch first = deadlines.watch(ended, "payments", 7, BOUND);
            FenceDeadlines.Watch second = deadlines.watch(committing, "payments", 7, BOUND);
            ended.commit();
            assertThat(FenceDeadlines.end(ended)).isEmpty();
            assertThat(FenceDeadlines.beginCommit(committing)).isEmpty();
            waitPastTheDeadline();
            committing.commit();
            assertThat(FenceDeadlines.end(committing)).isEmpty();
            assertThat(first.aborted()).isFalse();
            assertThat(second.aborted()).isFalse();
            for (Connection c : new Connection[] {ended, committing}) {
                try (Statement s = c.createStatement()) {
                    s.execute("SELECT 1"); // still usable
                }
            }
        }
    }

    @Test
    void aCallersConnectionThatLeftItsTransactionOrWasClosedIsNotTouched() throws Exception {
        Connection closed = inTransaction();
        try (Connection idle = inTransaction()) {
            FenceDeadlines.Watch whileClosed = deadlines.watch(closed, "payments", 7, BOUND);
            FenceDeadlines.Watch whileIdle = deadlines.watch(idle, "payments", 7, BOUND);
            closed.close();
            idle.commit(); // no end: the caller's own transaction, as fenceTransaction leaves it
            waitPastTheDeadline();
            assertThat(whileClosed.aborted()).isFalse();
            assertThat(whileIdle.aborted()).isFalse();
            try (Statement s = idle.createStatement()) {
                s.execute("SELECT 1");
            }
            assertThat(FenceDeadlines.aborted(idle)).isEmpty();
        }
    }

    @Test
    void aLaterFenceOfTheSameLeaseOnTheSameConnectionReplacesTheDeadline() throws Exception {
        try (Connection c = inTransaction()) {
            FenceDeadlines.Watch first = deadlines.watch(c, "payments", 7, BOUND);
            FenceDeadlines.Watch again = deadlines.watch(c, "payments", 7, Duration.ofMinutes(1));
            waitPastTheDeadline();
            assertThat(first.aborted()).isFalse();
            assertThat(again.aborted()).isFalse();
            c.rollback();
            assertThat(FenceDeadlines.end(c)).isEmpty();
        }
    }
}
