package dev.pglease.bench;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.internal.election.Grant;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The window in which two processes believe they lead after a fast-failover holder's lease session is terminated:
 * from the moment the standby's grant became valid to the moment the old holder's grant ended (negative: the old
 * holder had stopped first), over {@code pglease.targets.ffWindowRuns} runs (20). Timings 10 s / 6 s / 2 s, both
 * processes in this JVM, so both readings come from the same monotonic clock. Fails when any run has a window above
 * zero. Run with {@code ./mvnw test -Ptargets -Dtest=FastFailoverWindowTest}.
 */
@Tag("targets")
class FastFailoverWindowTest {

    private static final int RUNS = Integer.getInteger("pglease.targets.ffWindowRuns", 20);

    @Test
    void theOldHolderStopsLeadingBeforeTheStandbyStartsInEveryRun() throws Exception {
        String schema = TestDatabase.freshSchema();
        List<Double> windows = new ArrayList<>();
        List<Double> takeovers = new ArrayList<>();
        for (int run = 0; run < RUNS; run++) {
            String lease = "ff-window-" + run;
            CompletableFuture<Leadership> elected = new CompletableFuture<>();
            try (PgLease a = PgLease.create(TestDatabase.dataSource(), config(schema, "a"));
                    PgLease b = PgLease.create(TestDatabase.dataSource(), config(schema, "b"));
                    Elector ea = a.elector(lease, listener(new CompletableFuture<>()))) {
                Grant old = (Grant) ea.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
                try (Elector eb = b.elector(lease, listener(elected))) {
                    awaitStandbyWaiting(schema, lease);
                    long killed = System.nanoTime();
                    terminateLeaseSession(schema, lease);
                    Grant successor = (Grant) elected.get(10, TimeUnit.SECONDS);
                    Awaitility.await().atMost(Duration.ofSeconds(10)).until(() -> !old.isValid());
                    windows.add((old.validUntil() - successor.grantedAt()) / 1e6);
                    takeovers.add((successor.grantedAt() - killed) / 1e6);
                }
            }
        }
        String report = String.format(
                Locale.ROOT,
                "fast failover, %d runs: two-leader window (old holder's end - successor's start) %s ms;"
                        + " takeover %s ms; load %s",
                RUNS,
                summary(windows),
                summary(takeovers),
                Harness.loadAverage());
        System.out.println(report);
        assertThat(windows).as(report).allMatch(w -> w <= 0);
    }

    private static LeaseConfig config(String schema, String label) {
        return LeaseConfig.builder()
                .schema(schema)
                .holderLabel(label)
                .fastFailover(true)
                .leaseDuration(Duration.ofSeconds(10))
                .renewDeadline(Duration.ofSeconds(6))
                .retryPeriod(Duration.ofSeconds(2))
                .build();
    }

    private static LeaderListener listener(CompletableFuture<Leadership> elected) {
        return new LeaderListener() {
            @Override
            public void onElected(Leadership l) {
                elected.complete(l);
            }

            @Override
            public void onRevoked(Leadership l) {}
        };
    }

    /** min / p50 / p90 / max, and every value in run order. */
    private static String summary(List<Double> values) {
        List<Double> sorted = values.stream().sorted().toList();
        int n = sorted.size();
        return String.format(
                Locale.ROOT,
                "min %.2f, p50 %.2f, p90 %.2f, max %.2f (runs: %s)",
                sorted.get(0),
                sorted.get((n - 1) / 2),
                sorted.get(Math.min(n - 1, (int) Math.ceil(n * 0.9) - 1)),
                sorted.get(n - 1),
                values.stream().map(v -> String.format(Locale.ROOT, "%.2f", v)).toList());
    }

    private static void awaitStandbyWaiting(String schema, String lease) {
        Awaitility.await("the standby waits on the holder's lock")
                .atMost(Duration.ofSeconds(10))
                .until(() -> locks(schema, lease, "count(*)", "NOT k.granted AND k.mode = 'ShareLock'") > 0);
    }

    private static void terminateLeaseSession(String schema, String lease) throws Exception {
        assertThat(locks(schema, lease, "count(pg_terminate_backend(k.pid))", "k.granted AND k.mode = 'ExclusiveLock'"))
                .as("lease sessions terminated")
                .isEqualTo(1);
    }

    private static long locks(String schema, String lease, String select, String condition) throws Exception {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT " + select + " FROM pg_locks k"
                        + " WHERE k.locktype = 'advisory' AND " + condition
                        + " AND k.classid::bigint = (" + schema + ".fast_failover_key(?) >> 32) & 4294967295"
                        + " AND k.objid::bigint = " + schema + ".fast_failover_key(?) & 4294967295")) {
            ps.setString(1, lease);
            ps.setString(2, lease);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }
}
