package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The client-side bound of {@link PgLease#fenceTransaction} on a connection the caller keeps (a dedicated JDBC
 * connection, jOOQ on one connection, Spring's {@code SingleConnectionDataSource}): docs/fencing.md promises that "the
 * process aborts a fenced transaction still open at its deadline, and never one that ended". Once the fenced
 * transaction has committed, the next transaction on the same connection is not the fenced one: it must not be
 * aborted at the old grant's deadline, whether it is not fenced at all or fenced with another lease's grant.
 *
 * <p>On main the deadline's watch is only forgotten when the same lease fences that connection again, or when the
 * connection is closed; at the old deadline it aborts whatever transaction the connection is in by then.
 */
class CallerConnectionNextTransactionTest {

    private static String schema;
    private static PgLease pglease;

    @BeforeAll
    static void setUp() {
        schema = TestDatabase.freshSchema();
        TestDatabase.execute("CREATE TABLE " + schema + ".charges (id int PRIMARY KEY)");
        pglease = PgLease.create(
                TestDatabase.dataSource(), LeaseConfig.builder().schema(schema).build());
    }

    @AfterAll
    static void tearDown() {
        pglease.close();
    }

    /** Runs {@code sql} on the connection's open transaction. */
    private static void exec(Connection c, String sql) throws Exception {
        try (Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }

    private static void waitPast(Duration deadline) throws InterruptedException {
        Thread.sleep(deadline.toMillis() + 400); // the deadline, its grace (at most 100 ms), and some
    }

    @Test
    void anUnfencedTransactionAfterTheCommittedFencedOneIsNotAbortedAtTheOldDeadline() throws Exception {
        try (LeaseLock lock =
                        pglease.tryLock("nightly", Duration.ofMillis(1500)).orElseThrow();
                Connection c = TestDatabase.dataSource().getConnection()) {
            c.setAutoCommit(false);
            Duration deadline = lock.remaining();
            pglease.fenceTransaction(c, lock);
            exec(c, "INSERT INTO " + schema + ".charges VALUES (1)");
            c.commit(); // the fenced transaction ended, well before the deadline

            exec(c, "INSERT INTO " + schema + ".charges VALUES (2)"); // the next unit of work, not fenced
            waitPast(deadline);
            Throwable t = catchThrowable(() -> {
                exec(c, "INSERT INTO " + schema + ".charges VALUES (3)");
                c.commit();
            });
            assertThat(t)
                    .as("the transaction after the committed fenced one, at the old grant's deadline")
                    .isNull();
        }
    }

    @Test
    void aTransactionFencedWithAnotherLeaseAfterTheCommittedOneIsNotAbortedAtTheFirstLeasesDeadline() throws Exception {
        try (LeaseLock first = pglease.tryLock("first", Duration.ofMillis(1500)).orElseThrow();
                LeaseLock second =
                        pglease.tryLock("second", Duration.ofMinutes(1)).orElseThrow();
                Connection c = TestDatabase.dataSource().getConnection()) {
            c.setAutoCommit(false);
            Duration deadline = first.remaining();
            pglease.fenceTransaction(c, first);
            exec(c, "INSERT INTO " + schema + ".charges VALUES (11)");
            c.commit();

            pglease.fenceTransaction(c, second); // valid for a minute
            exec(c, "INSERT INTO " + schema + ".charges VALUES (12)");
            waitPast(deadline);
            Throwable t = catchThrowable(() -> {
                exec(c, "INSERT INTO " + schema + ".charges VALUES (13)");
                c.commit();
            });
            assertThat(t)
                    .as("a transaction fenced with lease \"second\" (valid for a minute), at lease \"first\"'s "
                            + "deadline")
                    .isNull();
        }
    }

    /**
     * The control: the fenced transaction itself, still open at its deadline, is aborted by the process. Its
     * server-side bounds are cleared here (its own login may), so only the process's deadline can end it.
     */
    @Test
    void theFencedTransactionStillOpenAtItsDeadlineIsAborted() throws Exception {
        try (LeaseLock lock =
                        pglease.tryLock("overrun", Duration.ofMillis(1500)).orElseThrow();
                Connection c = TestDatabase.dataSource().getConnection()) {
            c.setAutoCommit(false);
            Duration deadline = lock.remaining();
            pglease.fenceTransaction(c, lock);
            exec(
                    c,
                    "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0; "
                            + "SET LOCAL idle_in_transaction_session_timeout = 0; "
                            + "DO $$ BEGIN IF current_setting('server_version_num')::int >= 170000 THEN "
                            + "PERFORM set_config('transaction_timeout', '0', true); END IF; END $$");
            exec(c, "INSERT INTO " + schema + ".charges VALUES (21)");
            waitPast(deadline);
            Throwable t = catchThrowable(() -> {
                exec(c, "INSERT INTO " + schema + ".charges VALUES (22)");
                c.commit();
            });
            assertThat(t)
                    .as("the fenced transaction, still open at its grant's deadline")
                    .isNotNull();
        }
        try (Connection c = TestDatabase.dataSource().getConnection();
                Statement s = c.createStatement();
                java.sql.ResultSet rs =
                        s.executeQuery("SELECT count(*) FROM " + schema + ".charges WHERE id IN (21, 22)")) {
            rs.next();
            assertThat(rs.getInt(1)).as("writes of the aborted transaction").isZero();
        }
    }
}
