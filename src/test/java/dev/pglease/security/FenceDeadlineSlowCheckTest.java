package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.LeaseConfig;
import dev.pglease.LeaseLock;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * PgLease.fenceTransaction's Javadoc: "A later transaction on the same connection is never aborted." The deadline
 * asks the database, on a connection of pglease's data source, whether the fenced server transaction still runs, and
 * aborts the caller's connection when it can not tell within a second. A pool whose connections are all in use (the
 * application's busy hour, one pool shared by pglease and the application) hands that connection out only after the
 * pool's wait: then the caller's connection is aborted at the old grant's deadline although the fenced transaction
 * committed long before and the connection runs an unrelated later transaction.
 */
class FenceDeadlineSlowCheckTest {

    /** pglease's data source: a pool that is saturated while {@code busy} (each connection comes 3 s late). */
    static final class BusyPool extends PGSimpleDataSource {
        volatile boolean busy;

        @Override
        public Connection getConnection() throws SQLException {
            if (busy) {
                try {
                    Thread.sleep(3000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new SQLException("interrupted while waiting for a pooled connection", e);
                }
            }
            return super.getConnection();
        }
    }

    private static String schema;
    private static BusyPool pool;
    private static PgLease pglease;

    @BeforeAll
    static void setUp() {
        schema = TestDatabase.freshSchema();
        TestDatabase.execute("CREATE TABLE " + schema + ".charges (id int PRIMARY KEY)");
        pool = new BusyPool();
        pool.setURL(TestDatabase.jdbcUrl());
        pglease = PgLease.create(pool, LeaseConfig.builder().schema(schema).build());
    }

    @AfterAll
    static void tearDown() {
        if (pglease != null) {
            pglease.close();
        }
    }

    private static void exec(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }

    @Test
    void aLaterTransactionIsNotAbortedWhenThePoolIsSlowToAnswerTheDeadlineCheck() throws Exception {
        try (LeaseLock lock =
                        pglease.tryLock("nightly", Duration.ofMillis(1500)).orElseThrow();
                Connection c = TestDatabase.dataSource().getConnection()) {
            c.setAutoCommit(false);
            Duration deadline = lock.remaining();
            pglease.fenceTransaction(c, lock);
            exec(c, "INSERT INTO " + schema + ".charges VALUES (1)");
            c.commit(); // the fenced transaction ended, well before the deadline

            exec(c, "INSERT INTO " + schema + ".charges VALUES (2)"); // the next unit of work, not fenced
            pool.busy = true;
            Thread.sleep(deadline.toMillis() + 2500); // the deadline, its grace, the check's second, and some
            pool.busy = false;
            Throwable t = catchThrowable(() -> {
                exec(c, "INSERT INTO " + schema + ".charges VALUES (3)");
                c.commit();
            });
            assertThat(t)
                    .as("the unfenced transaction after the committed fenced one, at the old grant's deadline, "
                            + "while pglease's pool is slow to hand out a connection")
                    .isNull();
        }
    }
}
