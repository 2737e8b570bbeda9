package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.fault.kit.FakeTime;
import dev.pglease.fault.kit.PgServer;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import javax.sql.DataSource;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * The database server's clock steps (an NTP correction, a failover to a primary whose clock differs), moved here
 * with libfaketime on a real PostgreSQL server, while candidates log in with least privilege.
 *
 * <ul>
 *   <li>Forward: every grant ends early on the database clock while holders' local deadlines stay where they were.
 *       The holder learns it at its next renewal, which finds the lease expired: the window in which it may still
 *       believe it leads after the step is bounded by retryPeriod plus one statement.</li>
 *   <li>Backward: the rightful holder keeps renewing and can release; nobody loses a lease to it.</li>
 * </ul>
 */
class DatabaseClockStepTest {

    private static final LeaseConfig TIMINGS = LeaseConfig.builder()
            .schema("clock")
            .leaseDuration(Duration.ofSeconds(2))
            .renewDeadline(Duration.ofMillis(1200))
            .retryPeriod(Duration.ofMillis(300))
            .build();

    @Test
    void holdersSurviveBackwardStepsAndLearnOfForwardStepsWithinARetryPeriod() throws Exception {
        Required.assume(PgServer.available(), "system PostgreSQL 15 binaries usable through runuser");
        Required.assume(FakeTime.available(), "libfaketime (apt-get install faketime)");
        Path base = PgServer.newBaseDir();
        Path offset = base.resolve("clock-offset");
        FakeTime.writeOffset(offset, 0);
        try (PgServer server = PgServer.init(base, "clock", PgServer.defaults())) {
            server.stopFast();
            server.startWith(FakeTime.serverEnv(offset));
            server.awaitReady(true, Duration.ofSeconds(30));
            DataSource owner = dataSource(server, "postgres");
            PgLease.migrate(owner, "clock");
            try (Connection c = owner.getConnection();
                    Statement s = c.createStatement()) {
                s.execute("CREATE ROLE clock_app LOGIN IN ROLE clock_candidate");
            }
            String lease = "clock-" + System.nanoTime();
            Recorder first = new Recorder();
            Recorder second = new Recorder();
            try (PgLease a = PgLease.create(
                            dataSource(server, "clock_app"),
                            TIMINGS.toBuilder().holderLabel("a").build());
                    Elector ea = a.elector(lease, first)) {
                first.elected.get(10, TimeUnit.SECONDS);
                try (PgLease b = PgLease.create(
                                dataSource(server, "clock_app"),
                                TIMINGS.toBuilder().holderLabel("b").build());
                        Elector eb = b.elector(lease, second)) {
                    Thread.sleep(500);
                    Leadership before = first.leadership.get();
                    long stepped = System.nanoTime();
                    FakeTime.writeOffset(offset, 5_000);
                    System.out.println("database clock ahead by " + databaseOffsetMillis(owner) + " ms");
                    long believedMillis =
                            TimeUnit.NANOSECONDS.toMillis(first.revokedAt.get(5, TimeUnit.SECONDS) - stepped);
                    long bound = TIMINGS.retryPeriod().toMillis() + 250;
                    System.out.printf(
                            "database clock +5 s: the holder learned after %d ms (bound %d ms), load %s%n",
                            believedMillis, bound, TestLoad.average());
                    assertThat(believedMillis)
                            .as("ms the old holder still believed it led after the step")
                            .isLessThanOrEqualTo(bound);

                    // Whoever leads next (the old holder may take the expired lease again, with a new token).
                    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                    Recorder next = null;
                    while (next == null && System.nanoTime() < until) {
                        for (Recorder r : new Recorder[] {first, second}) {
                            Leadership l = r.leadership.get();
                            if (l != null && l.token() > before.token() && l.isValid()) {
                                next = r;
                            }
                        }
                        Thread.sleep(10);
                    }
                    assertThat(next).as("a leader after the forward step").isNotNull();
                    Leadership successor = next.leadership.get();
                    long revocationsBefore = next.revocations.get();
                    FakeTime.writeOffset(offset, -25_000);
                    System.out.println("database clock ahead by " + databaseOffsetMillis(owner) + " ms");
                    Thread.sleep(3 * TIMINGS.leaseDuration().toMillis());
                    assertThat(next.revocations.get() - revocationsBefore)
                            .as("step-downs after the database clock went back 30 s")
                            .isZero();
                    assertThat(successor.isValid()).isTrue();
                    (next == first ? ea : eb).close();
                    assertThat(events(owner, lease))
                            .as("the holder's release after the backward step")
                            .contains("released " + successor.token() + " by " + successor.holder());
                }
            }
        }
    }

    private static long databaseOffsetMillis(DataSource ds) throws Exception {
        try (Connection c = ds.getConnection();
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")) {
            rs.next();
            return rs.getLong(1) - System.currentTimeMillis();
        }
    }

    private static java.util.List<String> events(DataSource ds, String lease) throws Exception {
        java.util.List<String> events = new java.util.ArrayList<>();
        try (Connection c = ds.getConnection();
                PreparedStatement ps = c.prepareStatement(
                        "SELECT kind, token, previous_holder FROM clock.lease_events WHERE name = ? ORDER BY id")) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    events.add(rs.getString(1) + " " + rs.getLong(2) + " by " + rs.getString(3));
                }
            }
        }
        return events;
    }

    private static DataSource dataSource(PgServer server, String user) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL(server.jdbcUrl().replace("user=postgres", "user=" + user));
        return ds;
    }

    private static final class Recorder implements LeaderListener {
        final CompletableFuture<Long> elected = new CompletableFuture<>();
        final CompletableFuture<Long> revokedAt = new CompletableFuture<>();
        final java.util.concurrent.atomic.AtomicReference<Leadership> leadership =
                new java.util.concurrent.atomic.AtomicReference<>();
        final AtomicLong revocations = new AtomicLong();

        @Override
        public void onElected(Leadership l) {
            elected.complete(System.nanoTime());
            leadership.set(l);
        }

        @Override
        public void onRevoked(Leadership l) {
            revocations.incrementAndGet();
            revokedAt.complete(System.nanoTime());
        }
    }
}
