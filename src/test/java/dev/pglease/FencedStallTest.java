package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.internal.election.Grant;
import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.store.LeaseStore;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import javax.sql.DataSource;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A holder that stalls inside a fenced transaction (paused, or cut off from the database) must not hold off the
 * takeover: the server ends the transaction when the holder's validity runs out, the stalled write never commits,
 * and a standby holds the lease within leaseDuration + retryPeriod + 250 ms of the stall. No candidate is ever
 * granted a lease it was not told about: a lease statement gives up on the server before its client does.
 */
@Tag("core")
class FencedStallTest {

    private static final Duration LEASE = Duration.ofSeconds(1);
    private static final Duration RENEW_DEADLINE = Duration.ofMillis(600);
    private static final Duration RETRY = Duration.ofMillis(200);
    private static final Duration STALL = Duration.ofSeconds(5);
    private static String schema;
    private static DataSource ds;

    @BeforeAll
    static void setUp() {
        schema = TestDatabase.freshSchema();
        ds = TestDatabase.dataSource();
        TestDatabase.execute("CREATE TABLE " + schema + ".charges (id bigint GENERATED ALWAYS AS IDENTITY, "
                + "token bigint NOT NULL)");
    }

    @Test
    void aHolderStalledInsideAFencedTransactionDoesNotHoldOffTheTakeover() throws Exception {
        String lease = "stall-" + System.nanoTime();
        LeaseConfig config = LeaseConfig.builder()
                .schema(schema)
                .leaseDuration(LEASE)
                .renewDeadline(RENEW_DEADLINE)
                .retryPeriod(RETRY)
                .build();
        LeaseStatements sql = new LeaseStatements(schema);
        Set<Long> reported = ConcurrentHashMap.newKeySet();
        CompletableFuture<Long> standbyElectedAt = new CompletableFuture<>();
        try (PgLease writerSide = PgLease.create(
                        ds, config.toBuilder().holderLabel("writer").build());
                PgLease standby = PgLease.create(
                        TestDatabase.dataSource(),
                        config.toBuilder().holderLabel("standby").build())) {
            // The stalled holder: granted like an elector would be, then it never renews again (it is paused).
            long sent = System.nanoTime();
            long token;
            try (Connection c = ds.getConnection()) {
                LeaseStore.Acquired a = sql.acquire(c, lease, "stalled", LEASE);
                assertThat(a.granted()).isTrue();
                token = a.token();
            }
            Leadership stalled = new Grant(lease, "stalled", token, Ticker.SYSTEM, sent + RENEW_DEADLINE.toNanos());
            java.util.concurrent.atomic.AtomicLong stallStart = new java.util.concurrent.atomic.AtomicLong();
            CompletableFuture<Object> write = CompletableFuture.supplyAsync(() -> {
                try {
                    return writerSide.inFencedTransaction(stalled, c -> {
                        insertCharge(c, token);
                        stallStart.set(System.nanoTime());
                        try {
                            Thread.sleep(STALL.toMillis());
                        } catch (InterruptedException ie) {
                            Thread.currentThread().interrupt();
                        }
                        return "committed";
                    });
                } catch (SQLException | RuntimeException e) {
                    return e;
                }
            });
            while (stallStart.get() == 0) {
                if (write.isDone()) {
                    throw new AssertionError("the fenced transaction ended before it stalled: " + write.get());
                }
                Thread.sleep(1);
            }
            try (Elector e = standby.elector(lease, new LeaderListener() {
                @Override
                public void onElected(Leadership l) {
                    reported.add(l.token());
                    standbyElectedAt.complete(System.nanoTime());
                }

                @Override
                public void onRevoked(Leadership l) {}
            })) {
                long electedAt = standbyElectedAt.get(STALL.toMillis() + 10_000, TimeUnit.MILLISECONDS);
                long takeoverMillis = TimeUnit.NANOSECONDS.toMillis(electedAt - stallStart.get());
                long bound = LEASE.plus(RETRY).toMillis() + 250;
                System.out.printf(
                        "stall inside a fenced transaction: standby elected %d ms after the stall "
                                + "(bound %d ms), load %s%n",
                        takeoverMillis, bound, TestLoad.average());
                assertThat(takeoverMillis)
                        .as("ms from the stall to the standby's grant")
                        .isLessThanOrEqualTo(bound);
                Object outcome = write.get(STALL.toMillis() + 10_000, TimeUnit.MILLISECONDS);
                assertThat(outcome).as("the stalled fenced write").isInstanceOf(Exception.class);
                assertThat(chargesWithToken(token))
                        .as("charges committed by the stalled holder")
                        .isZero();
                Thread.sleep(RETRY.toMillis() * 2);
                reported.add(token);
                assertThat(unreportedGrants(lease, reported))
                        .as("grants in lease_events whose holder was never told (token, holder)")
                        .isEmpty();
            }
        }
    }

    private static void insertCharge(Connection c, long token) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + schema + ".charges (token) VALUES (?)")) {
            ps.setLong(1, token);
            ps.executeUpdate();
        }
    }

    private static int chargesWithToken(long token) throws SQLException {
        try (Connection c = ds.getConnection();
                PreparedStatement ps =
                        c.prepareStatement("SELECT count(*) FROM " + schema + ".charges WHERE token = ?")) {
            ps.setLong(1, token);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }

    /** Grants recorded by the database whose token no holder reported through onElected (or, for the test's own
     *  holder, through the test). */
    static List<String> unreportedGrants(String lease, Set<Long> reported) throws SQLException {
        List<String> unreported = new ArrayList<>();
        try (Connection c = ds.getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT token, holder FROM " + schema
                        + ".lease_events WHERE name = ? AND kind IN ('acquired', " + "'taken_over') ORDER BY id")) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    if (!reported.contains(rs.getLong(1))) {
                        unreported.add(rs.getLong(1) + " " + rs.getString(2));
                    }
                }
            }
        }
        return unreported;
    }
}
