package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import javax.sql.DataSource;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A leader's own fenced writers never delay its renewals: a payments worker with a pool of threads, each running
 * short fenced transactions back to back, keeps its lease for as long as it runs, and a standby that campaigns the
 * whole time never gets it. Only a change of holder or token waits for fenced transactions.
 */
@Tag("core")
class FencedWritersTest {

    private static final int WRITERS = 8;
    private static final Duration RUN = Duration.ofSeconds(Long.getLong("pglease.test.fencedWritersSeconds", 30));
    private static String schema;

    @BeforeAll
    static void setUp() {
        schema = TestDatabase.freshSchema();
        TestDatabase.execute("CREATE TABLE " + schema + ".charges (id bigint GENERATED ALWAYS AS IDENTITY, "
                + "token bigint NOT NULL)");
    }

    @Test
    void eightBusyFencedWritersNeverCostTheLeaderItsLease() throws Exception {
        String lease = "payments-" + System.nanoTime();
        // renewals every 200 ms with 1 s of slack before the deadline: a machine stall does not pass for starvation,
        // renewals kept waiting behind the writers' row locks for the whole run do
        LeaseConfig config = LeaseConfig.builder()
                .schema(schema)
                .leaseDuration(Duration.ofSeconds(2))
                .renewDeadline(Duration.ofMillis(1200))
                .retryPeriod(Duration.ofMillis(200))
                .build();
        AtomicInteger stepDowns = new AtomicInteger();
        AtomicInteger standbyElected = new AtomicInteger();
        CompletableFuture<Leadership> elected = new CompletableFuture<>();
        DataSource leaderPool = TestDatabase.dataSource();
        try (PgLease leader = PgLease.create(
                        leaderPool, config.toBuilder().holderLabel("leader").build());
                Elector leaderElector = leader.elector(lease, listener(elected::complete, stepDowns))) {
            Leadership leadership = elected.get(10, TimeUnit.SECONDS);
            try (PgLease standby = PgLease.create(
                            TestDatabase.dataSource(),
                            config.toBuilder().holderLabel("standby").build());
                    Elector standbyElector = standby.elector(
                            lease, listener(l -> standbyElected.incrementAndGet(), new AtomicInteger()))) {
                AtomicLong writes = new AtomicLong();
                AtomicInteger refused = new AtomicInteger();
                ExecutorService pool = Executors.newFixedThreadPool(WRITERS);
                long start = System.nanoTime();
                long end = start + RUN.toNanos();
                List<CompletableFuture<Void>> writers = new ArrayList<>();
                for (int i = 0; i < WRITERS; i++) {
                    writers.add(CompletableFuture.runAsync(
                            () -> {
                                while (System.nanoTime() - end < 0) {
                                    try {
                                        leader.inFencedTransaction(leadership, c -> {
                                            charge(c, leadership.token());
                                            sleep(30);
                                            return null;
                                        });
                                        writes.incrementAndGet();
                                    } catch (LeaseException e) {
                                        refused.incrementAndGet();
                                        sleep(30);
                                    } catch (SQLException e) {
                                        throw new IllegalStateException(e);
                                    }
                                }
                            },
                            pool));
                }
                CompletableFuture.allOf(writers.toArray(CompletableFuture[]::new))
                        .get(RUN.toSeconds() + 30, TimeUnit.SECONDS);
                pool.shutdown();
                double seconds = (System.nanoTime() - start) / 1e9;
                System.out.printf(
                        "fenced writers: %d threads, %.1f s, %d commits (%.0f/s), %d refused, "
                                + "%d step-downs, load %s%n",
                        WRITERS,
                        seconds,
                        writes.get(),
                        writes.get() / seconds,
                        refused.get(),
                        stepDowns.get(),
                        TestLoad.average());
                assertThat(stepDowns.get())
                        .as("times the leader lost its own lease")
                        .isZero();
                assertThat(refused.get())
                        .as("fenced writes refused while the leader held its lease")
                        .isZero();
                assertThat(standbyElected.get())
                        .as("times the standby was elected")
                        .isZero();
                assertThat(leadership.isValid()).isTrue();
            }
        }
    }

    private static void charge(Connection c, long token) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + schema + ".charges (token) VALUES (?)")) {
            ps.setLong(1, token);
            ps.executeUpdate();
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private static LeaderListener listener(java.util.function.Consumer<Leadership> onElected, AtomicInteger revoked) {
        return new LeaderListener() {
            @Override
            public void onElected(Leadership l) {
                onElected.accept(l);
            }

            @Override
            public void onRevoked(Leadership l) {
                revoked.incrementAndGet();
            }
        };
    }
}
