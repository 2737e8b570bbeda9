package dev.pglease;

import static dev.pglease.testkit.Lane.PGBOUNCER_SESSION;
import static dev.pglease.testkit.Lane.PGBOUNCER_TRANSACTION;
import static org.assertj.core.api.Assertions.assertThat;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.pglease.testkit.NotInLane;
import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Logger;
import javax.sql.DataSource;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * pglease borrows connections from the application's pool and gives them back as it found them: no LISTEN left
 * behind, no session setting changed, and nothing borrowed once it is closed. A throwing observer or listener, even
 * one that throws an {@link Error}, never stops the election, and health never reports a stopped election as up.
 */
@Tag("core")
class HygieneTest {

    private static final LeaseConfig FAST = LeaseConfig.builder()
            .leaseDuration(Duration.ofMillis(1500))
            .renewDeadline(Duration.ofMillis(900))
            .retryPeriod(Duration.ofMillis(300))
            .build();
    private static String schema;

    @BeforeAll
    static void setUp() {
        schema = TestDatabase.freshSchema();
    }

    @Test
    @NotInLane(
            value = {PGBOUNCER_TRANSACTION, PGBOUNCER_SESSION},
            because = "sets session settings with the JDBC startup parameter options, which PgBouncer 1.18 "
                    + "refuses (FATAL: unsupported startup parameter: options)")
    void pooledConnectionsComeBackWithoutListenOrChangedSettings() throws Exception {
        HikariConfig hc = new HikariConfig();
        hc.setDataSource(TestDatabase.dataSource("options=-c%20synchronous_commit%3Doff"));
        hc.setMaximumPoolSize(3);
        hc.setMinimumIdle(3);
        try (HikariDataSource pool = new HikariDataSource(hc)) {
            List<String> before = sessionState(pool);
            CountingDataSource counting = new CountingDataSource(pool);
            CompletableFuture<Leadership> elected = new CompletableFuture<>();
            PgLease pglease =
                    PgLease.create(counting, FAST.toBuilder().schema(schema).build());
            Elector elector = pglease.elector("hygiene-" + System.nanoTime(), listener(elected::complete));
            Leadership l = elected.get(10, TimeUnit.SECONDS);
            pglease.inFencedTransaction(l, c -> null);
            elector.close();
            pglease.close();
            int borrowedAtClose = counting.borrowed.get();
            Thread.sleep(1000);
            assertThat(counting.borrowed.get())
                    .as("connections borrowed after close()")
                    .isEqualTo(borrowedAtClose);
            assertThat(sessionState(pool))
                    .as("LISTEN channels and settings of every pooled connection")
                    .isEqualTo(before);
        }
    }

    @Test
    void anObserverOrListenerThatThrowsAnErrorDoesNotStopTheElection() throws Exception {
        AtomicInteger renewals = new AtomicInteger();
        LeaseObserver failing = new LeaseObserver() {
            @Override
            public void renewed(String lease, long token, Duration latency) {
                renewals.incrementAndGet();
                throw new AssertionError("an observer's bug");
            }
        };
        CompletableFuture<Leadership> elected = new CompletableFuture<>();
        try (PgLease pglease = PgLease.create(
                        TestDatabase.dataSource(),
                        FAST.toBuilder().schema(schema).observer(failing).build());
                Elector elector = pglease.elector("errors-" + System.nanoTime(), listener(l -> {
                    elected.complete(l);
                    throw new StackOverflowError("a listener's bug");
                }))) {
            Leadership l = elected.get(10, TimeUnit.SECONDS);
            Thread.sleep(3000);
            assertThat(renewals.get())
                    .as("renewals in 3 s at a 300 ms retry period")
                    .isGreaterThanOrEqualTo(5);
            assertThat(l.isValid()).isTrue();
            assertThat(elector.state()).isEqualTo(Elector.State.LEADER);
        }
    }

    @Test
    void healthSaysSoWhenTheElectionThreadHasStopped() throws Exception {
        try (PgLease pglease = PgLease.create(
                        TestDatabase.dataSource(),
                        FAST.toBuilder().schema(schema).build());
                Elector elector = pglease.elector("stopped-" + System.nanoTime(), listener(l -> {}))) {
            assertThat(elector.awaitLeadership(Duration.ofSeconds(10))).isPresent();
            Thread election = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().equals("pglease-election " + pglease.holderId()))
                    .findFirst()
                    .orElseThrow();
            election.interrupt();
            election.join(5000);
            assertThat(elector.state()).isEqualTo(Elector.State.ELECTION_STOPPED);
            assertThat(dev.pglease.health.LeaseHealth.of(elector).isHealthy()).isFalse();
        }
    }

    /**
     * The callback and deadline threads are there before the first election (its callback waits for no thread to be
     * created), stay while the PgLease runs, and end with it.
     */
    @Test
    void theCallbackAndDeadlineThreadsStartWithThePgLeaseAndEndWithIt() throws Exception {
        java.util.Set<Thread> before = Thread.getAllStackTraces().keySet();
        List<Thread> started;
        try (PgLease pglease = PgLease.create(
                TestDatabase.dataSource(), FAST.toBuilder().schema(schema).build())) {
            started = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> !before.contains(t))
                    .filter(t -> t.getName().startsWith("pglease-callbacks-")
                            || t.getName().startsWith("pglease-deadlines-"))
                    .toList();
            assertThat(started)
                    .as("threads started by create(), before any elector")
                    .extracting(t -> t.getName().replaceAll("-\\d+$", ""))
                    .containsExactlyInAnyOrder(
                            "pglease-callbacks",
                            "pglease-callbacks",
                            "pglease-callbacks",
                            "pglease-callbacks",
                            "pglease-deadlines");
        }
        for (Thread t : started) {
            t.join(5000);
        }
        assertThat(started).as("threads still running after close()").noneMatch(Thread::isAlive);
    }

    /** Per pooled connection: LISTEN channels and the settings pglease touches, as the pool would hand them out. */
    private static List<String> sessionState(DataSource pool) throws SQLException {
        List<Connection> all = new ArrayList<>();
        List<String> state = new ArrayList<>();
        try {
            for (int i = 0; i < 3; i++) {
                Connection c = pool.getConnection();
                all.add(c);
                try (Statement s = c.createStatement();
                        ResultSet rs = s.executeQuery(
                                "SELECT (SELECT count(*) FROM pg_listening_channels()), current_setting('synchronous_commit'),"
                                        + " current_setting('lock_timeout'), current_setting('statement_timeout'),"
                                        + " current_setting('idle_in_transaction_session_timeout')")) {
                    rs.next();
                    state.add(rs.getString(1) + " " + rs.getString(2) + " " + rs.getString(3) + " " + rs.getString(4)
                            + " " + rs.getString(5));
                }
            }
        } finally {
            for (Connection c : all) {
                c.close();
            }
        }
        state.sort(null);
        return state;
    }

    private static LeaderListener listener(java.util.function.Consumer<Leadership> onElected) {
        return new LeaderListener() {
            @Override
            public void onElected(Leadership l) {
                onElected.accept(l);
            }

            @Override
            public void onRevoked(Leadership l) {}
        };
    }

    /** Counts the connections pglease borrows. */
    private static final class CountingDataSource implements DataSource {
        private final DataSource pool;
        final AtomicInteger borrowed = new AtomicInteger();

        CountingDataSource(DataSource pool) {
            this.pool = pool;
        }

        @Override
        public Connection getConnection() throws SQLException {
            borrowed.incrementAndGet();
            return pool.getConnection();
        }

        @Override
        public Connection getConnection(String user, String password) throws SQLException {
            borrowed.incrementAndGet();
            return pool.getConnection(user, password);
        }

        @Override
        public PrintWriter getLogWriter() throws SQLException {
            return pool.getLogWriter();
        }

        @Override
        public void setLogWriter(PrintWriter out) throws SQLException {
            pool.setLogWriter(out);
        }

        @Override
        public void setLoginTimeout(int seconds) throws SQLException {
            pool.setLoginTimeout(seconds);
        }

        @Override
        public int getLoginTimeout() throws SQLException {
            return pool.getLoginTimeout();
        }

        @Override
        public Logger getParentLogger() {
            return Logger.getGlobal();
        }

        @Override
        public <T> T unwrap(Class<T> iface) throws SQLException {
            return pool.unwrap(iface);
        }

        @Override
        public boolean isWrapperFor(Class<?> iface) {
            return false;
        }
    }
}
