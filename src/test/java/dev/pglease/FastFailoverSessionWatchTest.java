package dev.pglease;

import static dev.pglease.testkit.Lane.PGBOUNCER_SESSION;
import static dev.pglease.testkit.Lane.PGBOUNCER_TRANSACTION;
import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.testkit.NotInLane;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import javax.sql.DataSource;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.springframework.jdbc.datasource.DelegatingDataSource;

/**
 * A fast-failover holder learns at once that its lease session ended by watching it from a connection of its own.
 * While that watch is down (its connection was ended and can not come back), its grant is not registered for crash
 * takeover: a standby gets it only at expiry, after the holder stepped down at a failed renewal. Once the watch waits
 * again, the grant is registered again, and the end of its session ends the grant at once, as before.
 */
@Timeout(120)
@NotInLane(
        value = PGBOUNCER_TRANSACTION,
        because = "fast failover needs session-level advisory locks held on one server session, which "
                + "transaction pooling does not give: pglease refuses the mode there at start "
                + "(UNSUPPORTED_POOLING)")
@NotInLane(
        value = PGBOUNCER_SESSION,
        because = "ends the holder's server sessions by their application name and pid; behind a session pooler "
                + "the server sessions are the pooler's, not the holder's")
class FastFailoverSessionWatchTest {

    private static String schema;
    private final List<AutoCloseable> opened = new ArrayList<>();

    @BeforeAll
    static void migrate() {
        schema = TestDatabase.freshSchema();
    }

    @AfterEach
    void closeAll() throws Exception {
        for (int i = opened.size() - 1; i >= 0; i--) {
            opened.get(i).close();
        }
    }

    @Test
    void aHolderWhoseOwnSessionWatchCanNotComeBackIsTakenOverOnlyAfterItSteppedDown() throws Exception {
        String lease = "watch-down-" + System.nanoTime();
        String application = "pglease-holder-" + System.nanoTime();
        Full full = new Full(TestDatabase.dataSource("ApplicationName=" + application));
        Times holderTimes = new Times();
        Times standbyTimes = new Times();
        Elector holder = elector(full, "holder", lease, holderTimes, Duration.ofSeconds(10));
        Leadership first = holder.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
        standbyTimes.rival = holder;
        elector(TestDatabase.dataSource(), "standby", lease, standbyTimes, Duration.ofSeconds(10));
        int leasePid = registeredPid(lease).orElseThrow();

        // The server is full: the holder's open connections work, a new one is refused; its self-watch is ended.
        full.full = true;
        assertThat(terminateAllBut(application, leasePid))
                .as("the holder's other connections")
                .isPositive();
        Thread.sleep(300);
        assertThat(holder.isLeader()).as("its lease session is alive").isTrue();

        // Then its lease session ends, right after a renewal.
        java.sql.Timestamp renewed = renewedAt(lease);
        await("the holder renews", () -> !renewedAt(lease).equals(renewed));
        long endedAt = System.nanoTime();
        assertThat(terminate(leasePid)).as("the holder's lease session, ended").isTrue();
        await("the standby elected", () -> standbyTimes.elected != 0);
        await("the holder stepped down", () -> holderTimes.revoked != 0);

        assertThat(standbyTimes.rivalStillLeading)
                .as("the holder still led, with a valid grant, when the standby was elected")
                .isFalse();
        assertThat(holderTimes.revoked)
                .as(
                        "the holder stepped down (%s ms after the standby was elected)",
                        TimeUnit.NANOSECONDS.toMillis(holderTimes.revoked - standbyTimes.elected))
                .isLessThan(standbyTimes.elected);
        assertThat(first.isValid()).isFalse();
        assertThat(TimeUnit.NANOSECONDS.toMillis(standbyTimes.elected - endedAt))
                .as("the standby waited for the lease to expire (not taken over early)")
                .isGreaterThan(2_000);
    }

    @Test
    void aHolderRegistersAgainOnceTheWatchOfItsOwnSessionIsBackAndThenStepsDownAtOnceWhenItsSessionEnds()
            throws Exception {
        String lease = "watch-back-" + System.nanoTime();
        String application = "pglease-holder-" + System.nanoTime();
        Full full = new Full(TestDatabase.dataSource("ApplicationName=" + application));
        Times holderTimes = new Times();
        Elector holder = elector(full, "holder", lease, holderTimes, Duration.ofSeconds(30));
        Leadership first = holder.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
        elector(TestDatabase.dataSource(), "standby", lease, new Times(), Duration.ofSeconds(30));
        int leasePid = registeredPid(lease).orElseThrow();

        full.full = true;
        assertThat(terminateAllBut(application, leasePid)).isPositive();
        await("the grant's registration withdrawn", () -> registeredPid(lease).isEmpty());
        full.full = false;
        await("the grant registered again", () -> registeredPid(lease).isPresent());
        assertThat(registeredPid(lease)).as("by its lease session").hasValue(leasePid);
        assertThat(holder.isLeader()).isTrue();

        // Registered and watched again: the end of its session ends the grant at once (an unregistered grant would
        // be renewed from a new session and kept).
        long endedAt = System.nanoTime();
        assertThat(terminate(leasePid)).isTrue();
        await("the holder stepped down", () -> holderTimes.revoked != 0);
        assertThat(TimeUnit.NANOSECONDS.toMillis(holderTimes.revoked - endedAt))
                .as("the holder stepped down at once, long before its 20 s deadline")
                .isLessThan(5_000);
        assertThat(first.isValid()).isFalse();
        // Then the lease is granted again, with a later token (to the standby, by takeover; or, when the holder's
        // process released the ended grant first, to whichever candidate acquired it), long before its 30 s expiry.
        await("the lease granted again", () -> tokenOf(lease) > first.token());
        assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - endedAt))
                .as("the lease granted again after the holder's session ended, with a 30 s lease")
                .isLessThan(5_000);
    }

    @Test
    void theWatchOfItsOwnSessionComesBackPromptlyHoweverOftenItWasEnded() throws Exception {
        String lease = "watch-again-" + System.nanoTime();
        String application = "pglease-holder-" + System.nanoTime();
        Elector holder = elector(
                TestDatabase.dataSource("ApplicationName=" + application),
                "holder",
                lease,
                new Times(),
                Duration.ofSeconds(30));
        holder.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
        int leasePid = registeredPid(lease).orElseThrow();
        await("the self-watch waits", () -> watchPid(application).isPresent());
        // Without a fresh start after a connection that worked, the retry delay would double with every end: 100 ms,
        // 200 ms, ... 5 s from the seventh on.
        for (int end = 1; end <= 8; end++) {
            int watch = watchPid(application).orElseThrow();
            assertThat(terminate(watch)).isTrue();
            long endedAt = System.nanoTime();
            await("the self-watch back", () -> {
                OptionalInt now = watchPid(application);
                return now.isPresent() && now.getAsInt() != watch;
            });
            assertThat(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - endedAt))
                    .as("the self-watch back after end %d", end)
                    .isLessThan(1_500);
            await("the grant registered again", () -> registeredPid(lease).isPresent());
            assertThat(registeredPid(lease)).hasValue(leasePid);
        }
        assertThat(holder.isLeader()).isTrue();
    }

    private Elector elector(DataSource dataSource, String label, String lease, Times times, Duration leaseDuration) {
        PgLease p = PgLease.create(
                dataSource,
                LeaseConfig.builder()
                        .schema(schema)
                        .holderLabel(label)
                        .leaseDuration(leaseDuration)
                        .renewDeadline(leaseDuration.multipliedBy(6).dividedBy(10))
                        .retryPeriod(leaseDuration.dividedBy(5))
                        .fastFailover(true)
                        .build());
        opened.add(p);
        Elector e = p.elector(lease, times);
        opened.add(e);
        return e;
    }

    /** When this elector was last elected and revoked (System.nanoTime). */
    private static final class Times implements LeaderListener {
        volatile long elected;
        volatile long revoked;
        /** Whether {@link #rival} led, with a valid grant, when this elector was elected. */
        volatile boolean rivalStillLeading;

        volatile Elector rival;

        @Override
        public void onElected(Leadership leadership) {
            Elector r = rival;
            if (r != null && r.leadership().filter(Leadership::isValid).isPresent()) {
                rivalStillLeading = true;
            }
            elected = System.nanoTime();
        }

        @Override
        public void onRevoked(Leadership leadership) {
            revoked = System.nanoTime();
        }
    }

    /** A data source whose server can be full: then every new connection is refused, open ones work. */
    private static final class Full extends DelegatingDataSource {
        volatile boolean full;

        Full(DataSource target) {
            super(target);
        }

        @Override
        public Connection getConnection() throws SQLException {
            if (full) {
                throw new SQLException("sorry, too many clients already (test)", "53300");
            }
            return super.getConnection();
        }

        @Override
        public Connection getConnection(String username, String password) throws SQLException {
            return getConnection();
        }
    }

    private static OptionalInt registeredPid(String lease) {
        return intOf("SELECT pid FROM " + schema + ".fast_failover_sessions WHERE name = ?", lease);
    }

    /** The backend of {@code application} blocked on an advisory lock: the holder's watch of its own session. */
    private static OptionalInt watchPid(String application) {
        return intOf(
                "SELECT pid FROM pg_stat_activity WHERE application_name = ? AND wait_event_type = 'Lock'"
                        + " AND wait_event = 'advisory'",
                application);
    }

    private static OptionalInt intOf(String query, String parameter) {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement(query)) {
            ps.setString(1, parameter);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? OptionalInt.of(rs.getInt(1)) : OptionalInt.empty();
            }
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    private static long tokenOf(String lease) {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT token FROM " + schema + ".leases WHERE name = ?")) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                assertThat(rs.next()).as(lease).isTrue();
                return rs.getLong(1);
            }
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    private static java.sql.Timestamp renewedAt(String lease) {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps =
                        c.prepareStatement("SELECT renewed_at FROM " + schema + ".leases WHERE name = ?")) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                assertThat(rs.next()).as(lease).isTrue();
                return rs.getTimestamp(1);
            }
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    private static boolean terminate(int pid) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT pg_terminate_backend(?)")) {
            ps.setInt(1, pid);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    /** Terminates every backend of {@code application} but {@code keep}; how many. */
    private static int terminateAllBut(String application, int keep) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))"
                        + " FROM pg_stat_activity WHERE application_name = ? AND pid <> ?")) {
            ps.setString(1, application);
            ps.setInt(2, keep);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - end > 0) {
                throw new AssertionError("timed out waiting for: " + what);
            }
            Thread.sleep(2);
        }
    }
}
