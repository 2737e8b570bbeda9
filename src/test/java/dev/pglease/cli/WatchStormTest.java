package dev.pglease.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pglease.TestDatabase;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A storm of notifications costs {@code pglease watch} at most one read of {@code lease_events} per 100 ms (plus its
 * keep-alive), whatever their payloads (none, not JSON, almost 8000 bytes), and it prints only what the table holds.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class WatchStormTest {

    private static final long STORM_MILLIS = 3_000;

    @Test
    void aStormOfNotificationsCostsAtMostOneReadPer100MsAndPrintsOnlyRealEvents() throws Exception {
        String schema = TestDatabase.freshSchema();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        picocli.CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        CompletableFuture<Integer> watching = CompletableFuture.supplyAsync(() ->
                cl.execute("watch", "--json", "--for", "8s", "--jdbc-url", TestDatabase.jdbcUrl(), "--schema", schema));
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (!err.toString().contains("(LISTEN") && System.nanoTime() < end) {
            Thread.sleep(20);
        }
        assertThat(err.toString()).contains("(LISTEN");
        Thread.sleep(500);
        long readsBefore = reads(schema);
        int sent = 0;
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement storm = c.prepareStatement(
                        "SELECT count(pg_notify(?, CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN 'null' WHEN 2 THEN "
                                + "'{not json' || i ELSE repeat('x', 7990) || i END)) FROM generate_series(1, 4) i")) {
            storm.setString(1, schema + ".leases");
            long stormEnd = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(STORM_MILLIS);
            boolean changed = false;
            while (System.nanoTime() < stormEnd) {
                storm.execute();
                sent += 4;
                if (!changed && System.nanoTime() > stormEnd - TimeUnit.MILLISECONDS.toNanos(STORM_MILLIS / 2)) {
                    TestDatabase.execute("INSERT INTO " + schema + ".leases (name, holder, token, expires_at) "
                            + "VALUES ('real', 'someone', 1, clock_timestamp() + interval '1 minute')");
                    changed = true;
                }
            }
        }
        Thread.sleep(1_500); // the server's statistics are flushed by an idle backend about once a second
        long reads = reads(schema) - readsBefore;
        assertThat(watching.get(20, TimeUnit.SECONDS)).isZero();

        long bound = STORM_MILLIS / 100 + 5;
        System.out.printf("%d notifications in %d transactions, %d reads%n", sent, sent / 4, reads);
        assertThat(reads)
                .as(
                        "reads of lease_events while %d notifications arrived in %d ms (bound %d)",
                        sent, STORM_MILLIS, bound)
                .isBetween(1L, bound);
        List<String> lines = out.toString().lines().toList();
        assertThat(lines).as("watch printed only the real change").hasSize(1);
        @SuppressWarnings("unchecked")
        Map<String, Object> event = new ObjectMapper().readValue(lines.get(0), Map.class);
        assertThat(event)
                .containsEntry("lease", "real")
                .containsEntry("kind", "acquired")
                .containsEntry("holder", "someone");
    }

    /** Scans of lease_events (sequential and by index) since the statistics began. */
    private static long reads(String schema) throws Exception {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) "
                        + "FROM pg_stat_user_tables WHERE schemaname = ? AND relname = 'lease_events'")) {
            ps.setString(1, schema);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }
}
