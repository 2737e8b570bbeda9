package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.internal.election.Grant;
import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.store.LeaseStore;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import javax.sql.DataSource;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.datasource.DataSourceTransactionManager;
import org.springframework.jdbc.datasource.DataSourceUtils;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * {@link PgLease#fenceTransaction} fences a transaction the caller already has open, here one that Spring's
 * {@link DataSourceTransactionManager} manages: the check and the lock join Spring's connection, a stale token rolls
 * back Spring's whole transaction (writes made before the check too), and a takeover waits until it ends, which is at
 * the latest when the lease expires.
 */
@Tag("core")
class CallerTransactionFenceTest {

    private static final Duration TTL = Duration.ofSeconds(30);
    private static String schema;
    private static DataSource ds;
    private static JdbcTemplate jdbc;
    private static TransactionTemplate tx;
    private static LeaseStatements sql;

    @BeforeAll
    static void setUp() {
        schema = TestDatabase.freshSchema();
        ds = TestDatabase.dataSource();
        jdbc = new JdbcTemplate(ds);
        tx = new TransactionTemplate(new DataSourceTransactionManager(ds));
        sql = new LeaseStatements(schema);
        jdbc.execute("CREATE TABLE " + schema + ".charges (id bigint GENERATED ALWAYS AS IDENTITY, lease text, "
                + "token bigint)");
    }

    private static Leadership grant(String lease, String holder) throws SQLException {
        try (Connection c = ds.getConnection()) {
            LeaseStore.Acquired a = sql.acquire(c, lease, holder, TTL);
            assertThat(a.granted()).isTrue();
            return new Grant(lease, holder, a.token(), Ticker.SYSTEM, System.nanoTime() + TTL.toNanos());
        }
    }

    private static void charge(String lease, long token) {
        jdbc.update("INSERT INTO " + schema + ".charges (lease, token) VALUES (?, ?)", lease, token);
    }

    private static int charges(String lease) {
        return jdbc.queryForObject("SELECT count(*) FROM " + schema + ".charges WHERE lease = ?", Integer.class, lease);
    }

    private static void fence(PgLease pglease, Leadership l) {
        try {
            pglease.fenceTransaction(DataSourceUtils.getConnection(ds), l);
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void aValidLeadershipFencesSpringsTransactionAndItsWritesCommit() throws Exception {
        String lease = "spring-ok-" + System.nanoTime();
        Leadership l = grant(lease, "me");
        try (PgLease pglease =
                PgLease.create(ds, LeaseConfig.builder().schema(schema).build())) {
            tx.executeWithoutResult(status -> {
                fence(pglease, l);
                charge(lease, l.token());
            });
        }
        assertThat(charges(lease)).isEqualTo(1);
    }

    @Test
    void aStaleTokenRollsBackSpringsWholeTransaction() throws Exception {
        String lease = "spring-stale-" + System.nanoTime();
        Leadership old = grant(lease, "old");
        jdbc.update("UPDATE " + schema + ".leases SET expires_at = clock_timestamp() WHERE name = ?", lease);
        grant(lease, "new");
        try (PgLease pglease =
                PgLease.create(ds, LeaseConfig.builder().schema(schema).build())) {
            assertThatThrownBy(() -> tx.executeWithoutResult(status -> {
                        charge(lease, old.token()); // made before the check, in the same transaction
                        fence(pglease, old);
                        charge(lease, old.token());
                    }))
                    .isInstanceOfSatisfying(
                            LeaseException.class,
                            e -> assertThat(e.reason()).isEqualTo(LeaseException.Reason.STALE_TOKEN));
        }
        assertThat(charges(lease)).as("writes of the rolled-back transaction").isZero();
    }

    /**
     * A takeover waits for Spring's fenced transaction, and that transaction can not outlast its lease: the fence
     * bounds it on the server by the lease's remaining time (1.5 s here, though the grant is valid for 30 s in this
     * process, so no client-side deadline is involved). Left idle past the lease's expiry, it is ended by the server
     * then, commits nothing, and the takeover that waited for it is granted while Spring's thread still idles.
     */
    @Test
    void aTakeoverWaitsForSpringsFencedTransactionWhichTheServerEndsAtTheLeasesExpiry() throws Exception {
        String lease = "spring-wait-" + System.nanoTime();
        Duration leaseDuration = Duration.ofMillis(1500);
        CompletableFuture<LeaseStore.Acquired> takeover = new CompletableFuture<>();
        AtomicLong grantedAfterMs = new AtomicLong(-1);
        AtomicLong idledUntilMs = new AtomicLong(-1);
        Throwable ended;
        try (PgLease pglease =
                        PgLease.create(ds, LeaseConfig.builder().schema(schema).build());
                Connection taker = ds.getConnection()) {
            Leadership l;
            long start = System.nanoTime(); // the lease expires on the database clock at least 1.5 s after this
            try (Connection c = ds.getConnection()) {
                long token = sql.acquire(c, lease, "me", leaseDuration).token();
                l = new Grant(lease, "me", token, Ticker.SYSTEM, System.nanoTime() + TTL.toNanos());
            }
            ended = catchThrowable(() -> tx.executeWithoutResult(status -> {
                fence(pglease, l);
                charge(lease, l.token());
                CompletableFuture.runAsync(() -> {
                    try {
                        long giveUp = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                        LeaseStore.Acquired a = sql.acquire(taker, lease, "next", TTL);
                        while (!a.granted() && System.nanoTime() < giveUp) {
                            Thread.sleep(50);
                            a = sql.acquire(taker, lease, "next", TTL); // waits once the lease has expired
                        }
                        grantedAfterMs.set((System.nanoTime() - start) / 1_000_000);
                        takeover.complete(a);
                    } catch (SQLException | InterruptedException | RuntimeException e) {
                        takeover.completeExceptionally(e);
                    }
                });
                sleep(3_000); // idle in the fenced transaction, past the lease's expiry
                idledUntilMs.set((System.nanoTime() - start) / 1_000_000);
            }));
            LeaseStore.Acquired next = takeover.get(10, TimeUnit.SECONDS);
            assertThat(next.granted()).as("the takeover").isTrue();
            assertThat(next.token()).isGreaterThan(l.token());
        }
        assertThat(grantedAfterMs.get())
                .as(
                        "the takeover was granted %d ms after the lease was taken: not before it expired (1.5 s), and "
                                + "while Spring's thread still idled in the transaction (until %d ms): the server ended it",
                        grantedAfterMs.get(), idledUntilMs.get())
                .isGreaterThanOrEqualTo(leaseDuration.toMillis())
                .isLessThan(idledUntilMs.get());
        assertThat(ended)
                .as("the commit of the transaction the server ended")
                .isNotNull()
                .isNotInstanceOf(AssertionError.class);
        assertThat(charges(lease))
                .as("writes of the transaction the server ended")
                .isZero();
    }

    @Test
    @SuppressWarnings("deprecation")
    void theFormerNamesLockFenceAndFenceStillDoWhatFenceTransactionAndForwardFenceDo() throws Exception {
        String lease = "spring-former-" + System.nanoTime();
        Leadership old = grant(lease, "old");
        jdbc.update("UPDATE " + schema + ".leases SET expires_at = clock_timestamp() WHERE name = ?", lease);
        grant(lease, "new");
        try (PgLease pglease =
                PgLease.create(ds, LeaseConfig.builder().schema(schema).build())) {
            assertThatThrownBy(() -> tx.executeWithoutResult(status -> {
                        try {
                            pglease.lockFence(DataSourceUtils.getConnection(ds), old);
                        } catch (SQLException e) {
                            throw new IllegalStateException(e);
                        }
                        charge(lease, old.token());
                    }))
                    .isInstanceOfSatisfying(
                            LeaseException.class,
                            e -> assertThat(e.reason()).isEqualTo(LeaseException.Reason.STALE_TOKEN));
            assertThat(pglease.fence()).isSameAs(pglease.forwardFence());
        }
        assertThat(charges(lease)).isZero();
    }

    @Test
    void anAutoCommitConnectionIsRefusedBecauseTheLockWouldEndAtOnce() throws Exception {
        Leadership l = grant("spring-autocommit-" + System.nanoTime(), "me");
        try (PgLease pglease =
                        PgLease.create(ds, LeaseConfig.builder().schema(schema).build());
                Connection c = ds.getConnection()) {
            assertThatThrownBy(() -> pglease.fenceTransaction(c, l))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("auto-commit");
        }
    }

    @Test
    void underRepeatableReadTheFenceWorksAsTheTransactionsFirstStatement() throws Exception {
        String lease = "spring-rr-" + System.nanoTime();
        Leadership l = grant(lease, "me");
        TransactionTemplate repeatable = new TransactionTemplate(new DataSourceTransactionManager(ds));
        repeatable.setIsolationLevel(TransactionTemplate.ISOLATION_REPEATABLE_READ);
        TransactionTemplate serializable = new TransactionTemplate(new DataSourceTransactionManager(ds));
        serializable.setIsolationLevel(TransactionTemplate.ISOLATION_SERIALIZABLE);
        try (PgLease pglease =
                PgLease.create(ds, LeaseConfig.builder().schema(schema).build())) {
            for (TransactionTemplate t : new TransactionTemplate[] {repeatable, serializable}) {
                t.executeWithoutResult(status -> {
                    fence(pglease, l);
                    charge(lease, l.token());
                });
            }
        }
        assertThat(charges(lease)).isEqualTo(2);
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
