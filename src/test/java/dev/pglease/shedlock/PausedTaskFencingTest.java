package dev.pglease.shedlock;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.LeaseLock;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.sql.DataSource;
import net.javacrumbs.shedlock.core.DefaultLockingTaskExecutor;
import net.javacrumbs.shedlock.core.LockAssert;
import net.javacrumbs.shedlock.core.LockingTaskExecutor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A scheduled task on node A takes the lock, then pauses (a GC pause, a frozen VM) past lockAtMostFor; node B
 * takes the lock and writes; then A wakes up and writes too. With ShedLock's JDBC provider A's late write lands
 * after B's (nothing can tell it is late: even {@code LockAssert} passes). With the pglease provider the task
 * carries a fencing token, and A's late write is rejected both by its local deadline and by the database fence.
 */
class PausedTaskFencingTest {

    private static final Duration LOCK_AT_MOST = Duration.ofMillis(400);
    private static final long PAUSE_MILLIS = 1000;
    private static final long B_STARTS_AFTER_MILLIS = 600;

    private static String schema;
    private static DataSource dataSource;

    @BeforeAll
    static void setUp() {
        schema = TestDatabase.freshSchema();
        dataSource = TestDatabase.dataSource();
        TestDatabase.execute("CREATE TABLE " + schema + ".reports (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
                + " job text NOT NULL, writer text NOT NULL, token bigint)");
        TestDatabase.execute(ShedLockJdbcProviderContractTest.ShedLockTables.ddl(schema + ".shedlock"));
    }

    @Test
    void withShedLocksJdbcProviderThePausedTasksLateWriteLandsAfterTheNewHoldersWrite() throws Exception {
        String job = "jdbc-" + System.nanoTime();
        LockingTaskExecutor nodeA = new DefaultLockingTaskExecutor(
                ShedLockJdbcProviderContractTest.ShedLockTables.jdbcProvider(dataSource, schema + ".shedlock", "A"));
        LockingTaskExecutor nodeB = new DefaultLockingTaskExecutor(
                ShedLockJdbcProviderContractTest.ShedLockTables.jdbcProvider(dataSource, schema + ".shedlock", "B"));

        CompletableFuture<Void> a = CompletableFuture.runAsync(() -> nodeA.executeWithLock((Runnable) () -> {
            pause();
            LockAssert.assertLocked(); // passes: it only checks a thread-local, not the lock
            insert(job, "A", null);
        }, LockProviderContract.config(job, LOCK_AT_MOST)));
        Thread.sleep(B_STARTS_AFTER_MILLIS);
        nodeB.executeWithLock((Runnable) () -> insert(job, "B", null), LockProviderContract.config(job, LOCK_AT_MOST));
        a.get(10, TimeUnit.SECONDS);

        assertThat(writers(job)).as("A's late write is accepted after B's").containsExactly("B", "A");
    }

    @Test
    void withThePgleaseProviderThePausedTasksLateWriteIsRejected() throws Exception {
        String job = "pglease-" + System.nanoTime();
        LeaseConfig config = LeaseConfig.builder().schema(schema).build();
        try (PgLease a = PgLease.create(dataSource, config); PgLease b = PgLease.create(dataSource, config)) {
            LockingTaskExecutor nodeA = new DefaultLockingTaskExecutor(new PgLeaseLockProvider(a));
            LockingTaskExecutor nodeB = new DefaultLockingTaskExecutor(new PgLeaseLockProvider(b));
            List<Throwable> rejectedA = new ArrayList<>();
            long[] tokens = new long[2];

            CompletableFuture<Void> taskA = CompletableFuture.runAsync(() -> nodeA.executeWithLock((Runnable) () -> {
                LeaseLock lock = PgLeaseLockProvider.currentLock().orElseThrow();
                tokens[0] = lock.token();
                assertThat(lock.isValid()).isTrue();
                pause();
                assertThat(lock.isValid()).as("A knows its lock ran out").isFalse();
                // Same-database write guarded by the lease row: refused by the local deadline.
                try {
                    a.inFencedTransaction(lock.leadership(), c -> insert(c, job, "A", lock.token()));
                } catch (LeaseException | SQLException e) {
                    rejectedA.add(e);
                }
                // A resource guarded by a forward-only fence: refused by the database, B's token is higher.
                try {
                    a.fence().inTransaction(dataSource, job, lock.token(), c -> insert(c, job, "A", lock.token()));
                } catch (LeaseException | SQLException e) {
                    rejectedA.add(e);
                }
            }, LockProviderContract.config(job, LOCK_AT_MOST)));
            Thread.sleep(B_STARTS_AFTER_MILLIS);
            nodeB.executeWithLock((Runnable) () -> {
                LeaseLock lock = PgLeaseLockProvider.currentLock().orElseThrow();
                tokens[1] = lock.token();
                try {
                    b.fence().inTransaction(dataSource, job, lock.token(), c -> insert(c, job, "B", lock.token()));
                } catch (SQLException e) {
                    throw new IllegalStateException(e);
                }
            }, LockProviderContract.config(job, LOCK_AT_MOST));
            taskA.get(10, TimeUnit.SECONDS);

            assertThat(tokens[1]).as("B's token is higher").isGreaterThan(tokens[0]);
            assertThat(rejectedA).hasSize(2);
            assertThat(((LeaseException) rejectedA.get(0)).reason()).isEqualTo(LeaseException.Reason.LEASE_LOST);
            assertThat(((LeaseException) rejectedA.get(1)).reason()).isEqualTo(LeaseException.Reason.STALE_TOKEN);
            assertThat(writers(job)).as("only B's write landed").containsExactly("B");
            assertThat(PgLeaseLockProvider.currentLock()).as("no lock outside a task").isEmpty();
        }
    }

    @Test
    void theFencedWriteOfALiveTaskIsAccepted() throws Exception {
        String job = "live-" + System.nanoTime();
        try (PgLease a = PgLease.create(dataSource, LeaseConfig.builder().schema(schema).build())) {
            new DefaultLockingTaskExecutor(new PgLeaseLockProvider(a)).executeWithLock((Runnable) () -> {
                LeaseLock lock = PgLeaseLockProvider.currentLock().orElseThrow();
                assertThat(PgLeaseLockProvider.currentToken()).isEqualTo(lock.token());
                try {
                    a.inFencedTransaction(lock.leadership(), c -> insert(c, job, "A", lock.token()));
                } catch (SQLException e) {
                    throw new IllegalStateException(e);
                }
            }, LockProviderContract.config(job, Duration.ofSeconds(30)));
        }
        assertThat(writers(job)).containsExactly("A");
    }

    private static void pause() {
        try {
            Thread.sleep(PAUSE_MILLIS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static void insert(String job, String writer, Long token) {
        try (Connection c = dataSource.getConnection()) {
            insert(c, job, writer, token);
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    private static int insert(Connection c, String job, String writer, Long token) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + schema + ".reports (job, writer, token)"
                + " VALUES (?, ?, ?)")) {
            ps.setString(1, job);
            ps.setString(2, writer);
            ps.setObject(3, token);
            return ps.executeUpdate();
        }
    }

    private static List<String> writers(String job) throws SQLException {
        List<String> writers = new ArrayList<>();
        try (Connection c = dataSource.getConnection();
             PreparedStatement ps = c.prepareStatement("SELECT writer FROM " + schema + ".reports WHERE job = ? ORDER BY id")) {
            ps.setString(1, job);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    writers.add(rs.getString(1));
                }
            }
        }
        return writers;
    }
}
