package dev.pglease;

import static dev.pglease.testkit.Lane.PGBOUNCER_SESSION;
import static dev.pglease.testkit.Lane.PGBOUNCER_TRANSACTION;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.internal.election.Grant;
import dev.pglease.internal.sql.FenceStatements;
import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.store.LeaseStore;
import dev.pglease.testkit.NotInLane;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import javax.sql.DataSource;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Fencing against a real PostgreSQL. A "stale holder" is a process whose local deadline has not passed (for
 * example because its clock ran slow or it was paused at the wrong moment) while the database already gave the
 * lease to someone else: the fence must reject its writes anyway.
 */
@Tag("core")
class FencingTest {

    private static final Duration TTL = Duration.ofSeconds(30);
    private static String schema;
    private static LeaseStatements sql;
    private static DataSource ds;

    @BeforeAll
    static void setUp() throws SQLException {
        schema = TestDatabase.freshSchema();
        sql = new LeaseStatements(schema);
        ds = TestDatabase.dataSource();
        try (Connection c = ds.getConnection();
                Statement s = c.createStatement()) {
            s.execute("CREATE TABLE " + schema + ".charges (id bigint GENERATED ALWAYS AS IDENTITY, lease text, "
                    + "token bigint, at timestamptz DEFAULT clock_timestamp())");
        }
    }

    /** A grant taken directly with the lease statement, with a local deadline far away (a stale holder's view). */
    private static Leadership grant(String lease, String holder) throws SQLException {
        return grant(lease, holder, TTL, TTL);
    }

    /** A grant whose database expiry is {@code ttl} away and whose holder's local deadline is {@code local} away. */
    private static Leadership grant(String lease, String holder, Duration ttl, Duration local) throws SQLException {
        try (Connection c = ds.getConnection()) {
            LeaseStore.Acquired a = sql.acquire(c, lease, holder, ttl);
            assertThat(a.granted()).isTrue();
            return new Grant(lease, holder, a.token(), Ticker.SYSTEM, System.nanoTime() + local.toNanos());
        }
    }

    private static void expire(String lease) throws SQLException {
        try (Connection c = ds.getConnection();
                PreparedStatement ps = c.prepareStatement("UPDATE " + schema
                        + ".leases SET expires_at = clock_timestamp() - interval '1 millisecond' WHERE name = ?")) {
            ps.setString(1, lease);
            ps.executeUpdate();
        }
    }

    private static int charge(Connection c, String lease, long token) throws SQLException {
        try (PreparedStatement ps =
                c.prepareStatement("INSERT INTO " + schema + ".charges (lease, token) VALUES (?, ?)")) {
            ps.setString(1, lease);
            ps.setLong(2, token);
            return ps.executeUpdate();
        }
    }

    private static List<Long> charges(String lease) throws SQLException {
        List<Long> tokens = new ArrayList<>();
        try (Connection c = ds.getConnection();
                PreparedStatement ps =
                        c.prepareStatement("SELECT token FROM " + schema + ".charges WHERE lease = ? ORDER BY id")) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    tokens.add(rs.getLong(1));
                }
            }
        }
        return tokens;
    }

    private static PgLease pglease() {
        return PgLease.create(ds, LeaseConfig.builder().schema(schema).build());
    }

    @Test
    void aStaleHoldersGuardedWriteIsRejectedAfterATakeover() throws Exception {
        String lease = "stale-" + System.nanoTime();
        Leadership old = grant(lease, "old");
        try (PgLease pglease = pglease()) {
            int written = pglease.inFencedTransaction(old, c -> charge(c, lease, old.token()));
            assertThat(written).isEqualTo(1);
            expire(lease);
            Leadership successor = grant(lease, "new");
            assertThat(old.isValid())
                    .as("the stale holder still believes it leads")
                    .isTrue();
            assertThatThrownBy(() -> pglease.inFencedTransaction(old, c -> charge(c, lease, old.token())))
                    .isInstanceOf(LeaseException.class)
                    .hasMessageContaining("no longer held by old with token " + old.token())
                    .extracting(e -> ((LeaseException) e).reason())
                    .isEqualTo(LeaseException.Reason.STALE_TOKEN);
            pglease.inFencedTransaction(successor, c -> charge(c, lease, successor.token()));
        }
        assertThat(charges(lease)).containsExactly(1L, 2L);
    }

    @Test
    void aWriteAfterTheLocalDeadlineIsNeverStarted() throws Exception {
        String lease = "late-" + System.nanoTime();
        Leadership expired = grant(lease, "me", TTL, Duration.ofNanos(-1));
        try (PgLease pglease = pglease()) {
            assertThatThrownBy(() -> pglease.inFencedTransaction(expired, c -> charge(c, lease, expired.token())))
                    .isInstanceOf(LeaseException.class)
                    .extracting(e -> ((LeaseException) e).reason())
                    .isEqualTo(LeaseException.Reason.LEASE_LOST);
        }
        assertThat(charges(lease)).isEmpty();
    }

    @Test
    @NotInLane(
            value = {PGBOUNCER_TRANSACTION, PGBOUNCER_SESSION},
            because = "sets session settings with the JDBC startup parameter options, which PgBouncer 1.18 "
                    + "refuses (FATAL: unsupported startup parameter: options)")
    void theLeaseRowCheckWaitsForALockNoLongerThanTheLeadershipHasLeft() throws Exception {
        // the session's own statement timeout is a minute: the bounds sent in the same batch as the check still
        // limit its wait for the row lock to the 600 ms the leadership has left
        String lease = "bounded-" + System.nanoTime();
        Leadership l = grant(lease, "me", TTL, Duration.ofMillis(600));
        DataSource patientSessions = TestDatabase.dataSource("options=-c%20statement_timeout=60000");
        try (Connection blocker = ds.getConnection();
                PgLease pglease = PgLease.create(
                        patientSessions, LeaseConfig.builder().schema(schema).build())) {
            blocker.setAutoCommit(false);
            try (PreparedStatement ps = blocker.prepareStatement("SELECT 1 FROM " + schema + ".leases WHERE name = ?"
                    + " FOR UPDATE")) { // conflicts with the check's FOR KEY SHARE
                ps.setString(1, lease);
                ps.executeQuery().close();
            }
            long start = System.nanoTime();
            // The server's bound and the process's deadline are both the 600 ms left; on a loaded machine the
            // process may abort the connection first (LEASE_LOST). The server bound alone: FenceServerBoundTest.
            assertThatThrownBy(() -> pglease.inFencedTransaction(l, c -> charge(c, lease, l.token())))
                    .satisfiesAnyOf(
                            e -> assertThat(e)
                                    .isInstanceOfSatisfying(
                                            SQLException.class,
                                            s -> assertThat(s.getSQLState())
                                                    .as(s.getMessage())
                                                    .isIn("55P03", "57014", "25P04")), // lock, statement, transaction
                            e -> assertThat(e)
                                    .isInstanceOfSatisfying(
                                            LeaseException.class,
                                            x -> assertThat(x.reason()).isEqualTo(LeaseException.Reason.LEASE_LOST)));
            assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
            blocker.rollback();
        }
        assertThat(charges(lease)).isEmpty();
    }

    @Test
    void anInFlightFencedWriteHoldsOffTheTakeoverUntilItCommits() throws Exception {
        String lease = "race-" + System.nanoTime();
        Leadership old = grant(lease, "old");
        try (Connection writer = ds.getConnection();
                Connection taker = ds.getConnection()) {
            writer.setAutoCommit(false);
            // bounded far beyond the test's waits: only the lock is under test here
            assertThat(new FenceStatements(schema).fenceTransaction(writer, false, 30_000, lease, "old", old.token()))
                    .isTrue();
            expire(lease); // the holder stalls and its lease runs out while the fenced transaction is open
            CompletableFuture<LeaseStore.Acquired> takeover = CompletableFuture.supplyAsync(() -> {
                try {
                    return sql.acquire(taker, lease, "new", TTL);
                } catch (SQLException e) {
                    throw new IllegalStateException(e);
                }
            });
            assertThatThrownBy(() -> takeover.get(500, TimeUnit.MILLISECONDS)).isInstanceOf(TimeoutException.class);
            charge(writer, lease, old.token());
            writer.commit();
            LeaseStore.Acquired acquired = takeover.get(10, TimeUnit.SECONDS);
            assertThat(acquired.granted()).isTrue();
            assertThat(acquired.token()).isEqualTo(old.token() + 1);
        }
        try (Connection c = ds.getConnection();
                PreparedStatement ps =
                        c.prepareStatement("SELECT (SELECT max(at) FROM " + schema + ".charges WHERE lease = ?) < "
                                + "(SELECT acquired_at FROM " + schema + ".leases WHERE name = ?)")) {
            ps.setString(1, lease);
            ps.setString(2, lease);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                assertThat(rs.getBoolean(1))
                        .as("the old holder's write committed before the new grant")
                        .isTrue();
            }
        }
    }

    @Test
    void theNaiveWhereExistsCheckUnderReadCommittedLetsAStaleWriteThroughAndTheKeyShareLockDoesNot() throws Exception {
        String naiveLease = "naive-" + System.nanoTime();
        Leadership old = grant(naiveLease, "old");
        try (Connection writer = ds.getConnection()) {
            writer.setAutoCommit(false);
            try (PreparedStatement check = writer.prepareStatement("SELECT EXISTS (SELECT 1 FROM " + schema
                    + ".leases WHERE name = ? AND holder = ? AND token = ? AND expires_at > clock_timestamp())")) {
                check.setString(1, naiveLease);
                check.setString(2, "old");
                check.setLong(3, old.token());
                try (ResultSet rs = check.executeQuery()) {
                    rs.next();
                    assertThat(rs.getBoolean(1)).isTrue();
                }
            }
            expire(naiveLease);
            Leadership successor = grant(naiveLease, "new");
            charge(writer, naiveLease, old.token());
            writer.commit();
            assertThat(successor.token()).isGreaterThan(old.token());
        }
        assertThat(charges(naiveLease))
                .as("the naive check accepted the stale holder's write after the takeover")
                .containsExactly(old.token());

        // The same interleaving through pglease: check, takeover attempted, write, commit.
        String fencedLease = "fenced-" + System.nanoTime();
        CompletableFuture<LeaseStore.Acquired> takeover = new CompletableFuture<>();
        try (PgLease pglease = pglease();
                Connection taker = ds.getConnection()) {
            Leadership stale = grant(fencedLease, "old");
            pglease.inFencedTransaction(stale, c -> {
                expire(fencedLease); // the lease runs out while the fenced transaction is open
                CompletableFuture.runAsync(() -> {
                    try {
                        takeover.complete(sql.acquire(taker, fencedLease, "new", TTL));
                    } catch (SQLException e) {
                        takeover.completeExceptionally(e);
                    }
                });
                try {
                    Thread.sleep(300);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                assertThat(takeover)
                        .as("the takeover waits for the fenced transaction")
                        .isNotDone();
                return charge(c, fencedLease, stale.token());
            });
            assertThat(takeover.get(10, TimeUnit.SECONDS).granted()).isTrue();
            assertThatThrownBy(() -> pglease.inFencedTransaction(stale, c -> charge(c, fencedLease, stale.token())))
                    .isInstanceOf(LeaseException.class);
            assertThat(charges(fencedLease))
                    .as("only the write that committed before the takeover")
                    .containsExactly(stale.token());
        }
        try (Connection c = ds.getConnection();
                PreparedStatement ps =
                        c.prepareStatement("SELECT (SELECT max(at) FROM " + schema + ".charges WHERE lease = ?) < "
                                + "(SELECT acquired_at FROM " + schema + ".leases WHERE name = ?)")) {
            ps.setString(1, fencedLease);
            ps.setString(2, fencedLease);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                assertThat(rs.getBoolean(1))
                        .as("no write after the successor's grant")
                        .isTrue();
            }
        }
    }

    @Test
    @NotInLane(
            value = {PGBOUNCER_TRANSACTION, PGBOUNCER_SESSION},
            because = "sets session settings with the JDBC startup parameter options, which PgBouncer 1.18 "
                    + "refuses (FATAL: unsupported startup parameter: options)")
    void aFencedTransactionRunsAtReadCommittedWhateverThePoolsDefaultIsolation() throws Exception {
        String lease = "isolation-" + System.nanoTime();
        Leadership l = grant(lease, "me");
        for (String level : new String[] {"repeatable%5C%20read", "serializable"}) {
            DataSource strict = TestDatabase.dataSource("options=-c%20default_transaction_isolation%3D" + level);
            try (PgLease pglease =
                    PgLease.create(strict, LeaseConfig.builder().schema(schema).build())) {
                String isolation = pglease.inFencedTransaction(l, c -> {
                    charge(c, lease, l.token());
                    try (Statement s = c.createStatement();
                            ResultSet rs = s.executeQuery("SELECT current_setting('transaction_isolation')")) {
                        rs.next();
                        return rs.getString(1);
                    }
                });
                assertThat(isolation).as("pool default " + level).isEqualTo("read committed");
            }
        }
        assertThat(charges(lease)).hasSize(2);
    }

    @Test
    void aFailingWorkRollsBackEverything() throws Exception {
        String lease = "rollback-" + System.nanoTime();
        Leadership l = grant(lease, "me");
        try (PgLease pglease = pglease()) {
            assertThatThrownBy(() -> pglease.inFencedTransaction(l, c -> {
                        charge(c, lease, l.token());
                        throw new SQLException("provider said no");
                    }))
                    .isInstanceOf(SQLException.class)
                    .hasMessage("provider said no");
        }
        assertThat(charges(lease)).isEmpty();
    }

    @Test
    void theForwardFenceAcceptsEqualAndHigherTokensAndRejectsLowerOnes() throws Exception {
        String resource = "provider-" + System.nanoTime();
        try (Connection c = ds.getConnection()) {
            ForwardFence.createTable(c, schema + ".own_fence");
        }
        ForwardFence fence = new ForwardFence(schema + ".own_fence");
        for (long token : new long[] {5, 5, 7}) {
            int written = fence.inTransaction(ds, resource, token, c -> charge(c, resource, token));
            assertThat(written).isEqualTo(1);
        }
        assertThatThrownBy(() -> fence.inTransaction(ds, resource, 6, c -> charge(c, resource, 6)))
                .isInstanceOf(LeaseException.class)
                .hasMessageContaining("token 6 is stale for resource \"" + resource + "\"")
                .hasMessageContaining("already at 7");
        assertThat(charges(resource)).containsExactly(5L, 5L, 7L);
        try (Connection c = ds.getConnection()) {
            assertThat(fence.current(c, resource)).hasValue(7);
            assertThatThrownBy(() -> fence.advance(c, resource, 8))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("auto-commit");
        }
    }

    /**
     * The schema's fence is bound to its leases: it takes the grant (or a lease and token), accepts the token of the
     * lease's current grant, again and again, refuses the token of an earlier grant and one the lease never granted,
     * and refuses a bare token.
     */
    @Test
    void theSchemasForwardFenceAcceptsOnlyTheCurrentGrantsToken() throws Exception {
        String lease = "fenced-" + System.nanoTime();
        String resource = "provider-" + System.nanoTime();
        try (PgLease pglease = pglease()) {
            ForwardFence fence = pglease.forwardFence();
            assertThat(fence.boundToLeases()).isTrue();
            Leadership first = grant(lease, "first");
            int firstWrite = fence.inTransaction(ds, resource, first, c -> charge(c, resource, first.token()));
            expire(lease);
            Leadership second = grant(lease, "second");
            assertThat(second.token()).isGreaterThan(first.token());
            int secondWrite = fence.inTransaction(ds, resource, second, c -> charge(c, resource, second.token()));
            int again = fence.inTransaction(ds, resource, lease, second.token(), c -> 1);
            assertThat(List.of(firstWrite, secondWrite, again))
                    .as("first, second, the second again as a receiving service presents it")
                    .containsExactly(1, 1, 1);
            assertThatThrownBy(() -> fence.inTransaction(ds, resource, first, c -> charge(c, resource, 0)))
                    .isInstanceOf(LeaseException.class)
                    .hasMessageContaining("token " + first.token() + " of lease \"" + lease + "\" is stale")
                    .hasMessageContaining("already at " + second.token())
                    .extracting(e -> ((LeaseException) e).reason())
                    .isEqualTo(LeaseException.Reason.STALE_TOKEN);
            long never = second.token() + 1;
            assertThatThrownBy(() -> fence.inTransaction(ds, resource, lease, never, c -> charge(c, resource, 0)))
                    .isInstanceOf(LeaseException.class)
                    .hasMessageContaining("token " + never + " of lease \"" + lease + "\" was refused")
                    .hasMessageContaining("has not granted token " + never)
                    .extracting(e -> ((LeaseException) e).reason())
                    .isEqualTo(LeaseException.Reason.STALE_TOKEN);
            assertThatThrownBy(() -> fence.inTransaction(ds, resource, second.token(), c -> 1))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("bound to its leases")
                    .hasMessageContaining("advance(connection, resource, grant)");
            try (Connection c = ds.getConnection()) {
                assertThat(fence.current(c, resource)).hasValue(second.token());
            }
            assertThat(charges(resource)).containsExactly(first.token(), second.token());
        }
    }

    @Test
    void aForwardFenceWorksInAnyDatabaseTableAndSerialisesConcurrentWriters() throws Exception {
        String table = schema + ".provider_fence";
        try (Connection c = ds.getConnection()) {
            ForwardFence.createTable(c, table);
        }
        ForwardFence fence = new ForwardFence(table);
        String resource = "acct-" + System.nanoTime();
        try (Connection low = ds.getConnection();
                Connection high = ds.getConnection()) {
            high.setAutoCommit(false);
            low.setAutoCommit(false);
            fence.advance(high, resource, 10);
            CompletableFuture<Throwable> lowResult = CompletableFuture.supplyAsync(() -> {
                try {
                    fence.advance(low, resource, 9);
                    return null;
                } catch (Exception e) {
                    return e;
                }
            });
            Thread.sleep(200);
            assertThat(lowResult)
                    .as("the lower token waits for the higher one's transaction")
                    .isNotDone();
            high.commit();
            assertThat(lowResult.get(10, TimeUnit.SECONDS)).isInstanceOf(LeaseException.class);
            low.rollback();
        }
    }
}
