package dev.pglease.shedlock;

import static org.assertj.core.api.Assertions.assertThat;

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
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.sql.DataSource;
import net.javacrumbs.shedlock.core.DefaultLockingTaskExecutor;
import net.javacrumbs.shedlock.core.LockAssert;
import net.javacrumbs.shedlock.core.LockingTaskExecutor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A scheduled task on node A takes the lock, then pauses (a GC pause, a frozen VM) past lockAtMostFor; node B's
 * scheduler takes the lock as soon as it expires and writes; then A wakes up and writes too. With ShedLock's JDBC provider A's late write lands
 * after B's (nothing can tell it is late: even {@code LockAssert} passes). With the pglease provider the task
 * carries a fencing token, and A's late write is rejected both by its local deadline and by the database fence.
 */
class PausedTaskFencingTest {

    private static final Duration LOCK_AT_MOST = Duration.ofMillis(400);

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

        CountDownLatch aLocked = new CountDownLatch(1);
        CountDownLatch bWrote = new CountDownLatch(1);
        CompletableFuture<Void> a = CompletableFuture.runAsync(() -> nodeA.executeWithLock(
                (Runnable) () -> {
                    aLocked.countDown();
                    pauseUntil(bWrote);
                    LockAssert.assertLocked(); // passes: it only checks a thread-local, not the lock
                    insert(job, "A", null);
                },
                LockProviderContract.config(job, LOCK_AT_MOST)));
        runOnceLockExpired(
                nodeB,
                aLocked,
                () -> {
                    insert(job, "B", null);
                    bWrote.countDown();
                },
                job);
        a.get(20, TimeUnit.SECONDS);

        assertThat(writers(job)).as("A's late write is accepted after B's").containsExactly("B", "A");
    }

    @Test
    void withThePgleaseProviderThePausedTasksLateWriteIsRejected() throws Exception {
        String job = "pglease-" + System.nanoTime();
        LeaseConfig config = LeaseConfig.builder().schema(schema).build();
        try (PgLease a = PgLease.create(dataSource, config);
                PgLease b = PgLease.create(dataSource, config)) {
            LockingTaskExecutor nodeA = new DefaultLockingTaskExecutor(new PgLeaseLockProvider(a));
            LockingTaskExecutor nodeB = new DefaultLockingTaskExecutor(new PgLeaseLockProvider(b));
            List<Throwable> rejectedA = new ArrayList<>();
            long[] tokens = new long[2];

            CountDownLatch aLocked = new CountDownLatch(1);
            CountDownLatch bWrote = new CountDownLatch(1);
            CompletableFuture<Void> taskA = CompletableFuture.runAsync(() -> nodeA.executeWithLock(
                    (Runnable) () -> {
                        LeaseLock lock = PgLeaseLockProvider.currentLock().orElseThrow();
                        tokens[0] = lock.token();
                        aLocked.countDown();
                        pauseUntil(bWrote);
                        assertThat(lock.isValid())
                                .as("A knows its lock ran out")
                                .isFalse();
                        // Same-database write guarded by the lease row: refused by the local deadline.
                        try {
                            a.inFencedTransaction(lock, c -> insert(c, job, "A", lock.token()));
                        } catch (LeaseException | SQLException e) {
                            rejectedA.add(e);
                        }
                        // A resource guarded by a forward-only fence: refused by the database, B's token is higher.
                        try {
                            a.forwardFence()
                                    .inTransaction(
                                            dataSource,
                                            job,
                                            lock.leaseName(),
                                            lock.token(),
                                            c -> insert(c, job, "A", lock.token()));
                        } catch (LeaseException | SQLException e) {
                            rejectedA.add(e);
                        }
                    },
                    LockProviderContract.config(job, LOCK_AT_MOST)));
            runOnceLockExpired(
                    nodeB,
                    aLocked,
                    () -> {
                        LeaseLock lock = PgLeaseLockProvider.currentLock().orElseThrow();
                        tokens[1] = lock.token();
                        try {
                            b.forwardFence()
                                    .inTransaction(dataSource, job, lock, c -> insert(c, job, "B", lock.token()));
                        } catch (SQLException e) {
                            throw new IllegalStateException(e);
                        }
                        bWrote.countDown();
                    },
                    job);
            taskA.get(20, TimeUnit.SECONDS);

            assertThat(tokens[1]).as("B's token is higher").isGreaterThan(tokens[0]);
            assertThat(rejectedA).hasSize(2);
            assertThat(((LeaseException) rejectedA.get(0)).reason()).isEqualTo(LeaseException.Reason.LEASE_LOST);
            assertThat(((LeaseException) rejectedA.get(1)).reason()).isEqualTo(LeaseException.Reason.STALE_TOKEN);
            assertThat(writers(job)).as("only B's write landed").containsExactly("B");
            assertThat(PgLeaseLockProvider.currentLock())
                    .as("no lock outside a task")
                    .isEmpty();
        }
    }

    @Test
    void theFencedWriteOfALiveTaskIsAccepted() throws Exception {
        String job = "live-" + System.nanoTime();
        try (PgLease a =
                PgLease.create(dataSource, LeaseConfig.builder().schema(schema).build())) {
            new DefaultLockingTaskExecutor(new PgLeaseLockProvider(a))
                    .executeWithLock(
                            (Runnable) () -> {
                                LeaseLock lock =
                                        PgLeaseLockProvider.currentLock().orElseThrow();
                                assertThat(PgLeaseLockProvider.currentToken()).isEqualTo(lock.token());
                                try {
                                    a.inFencedTransaction(lock, c -> insert(c, job, "A", lock.token()));
                                } catch (SQLException e) {
                                    throw new IllegalStateException(e);
                                }
                            },
                            LockProviderContract.config(job, Duration.ofSeconds(30)));
        }
        assertThat(writers(job)).containsExactly("A");
    }

    /** A's task "pauses" (as in a long GC) until node B has run the next task and written. */
    private static void pauseUntil(CountDownLatch bWrote) {
        try {
            assertThat(bWrote.await(20, TimeUnit.SECONDS))
                    .as("B ran while A was paused")
                    .isTrue();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** Node B, once A holds the lock, runs the task as soon as its scheduler can take the lock (after expiry). */
    private static void runOnceLockExpired(LockingTaskExecutor nodeB, CountDownLatch aLocked, Runnable task, String job)
            throws InterruptedException {
        assertThat(aLocked.await(20, TimeUnit.SECONDS)).as("A took the lock").isTrue();
        AtomicBoolean ran = new AtomicBoolean();
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!ran.get() && System.nanoTime() - end < 0) {
            nodeB.executeWithLock(
                    (Runnable) () -> {
                        ran.set(true);
                        task.run();
                    },
                    LockProviderContract.config(job, LOCK_AT_MOST));
            Thread.sleep(20);
        }
        assertThat(ran).as("B ran the task once A's lock expired").isTrue();
    }

    private static void insert(String job, String writer, Long token) {
        try (Connection c = dataSource.getConnection()) {
            insert(c, job, writer, token);
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    private static int insert(Connection c, String job, String writer, Long token) throws SQLException {
        try (PreparedStatement ps =
                c.prepareStatement("INSERT INTO " + schema + ".reports (job, writer, token)" + " VALUES (?, ?, ?)")) {
            ps.setString(1, job);
            ps.setString(2, writer);
            ps.setObject(3, token);
            return ps.executeUpdate();
        }
    }

    private static List<String> writers(String job) throws SQLException {
        List<String> writers = new ArrayList<>();
        try (Connection c = dataSource.getConnection();
                PreparedStatement ps =
                        c.prepareStatement("SELECT writer FROM " + schema + ".reports WHERE job = ? ORDER BY id")) {
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
