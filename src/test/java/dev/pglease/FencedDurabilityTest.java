package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.internal.election.Grant;
import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.tool.EmbeddedPostgresServer;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.Map;
import javax.sql.DataSource;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * An acknowledged fenced write is durable even where the role or database lets commits be acknowledged before they
 * are flushed ({@code synchronous_commit = off}): otherwise a crash could lose the "charged" row while the
 * successor's grant survives, and the successor would charge again. Both kinds of fencing are checked.
 */
@Tag("core")
class FencedDurabilityTest {

    private static final int WRITES = 20;

    @Test
    void acknowledgedFencedWritesSurviveACrashUnderAsynchronousCommit() throws Exception {
        // wal_writer_delay at its maximum: nothing but a synchronous commit flushes the WAL before the crash.
        try (EmbeddedPostgresServer server = EmbeddedPostgresServer.start(Map.of("wal_writer_delay", "10s"))) {
            DataSource ds = server.dataSource();
            String schema = "durable";
            PgLease.migrate(ds, schema);
            try (Connection c = ds.getConnection();
                    Statement s = c.createStatement()) {
                s.execute("CREATE TABLE " + schema + ".charges (id bigint GENERATED ALWAYS AS IDENTITY, kind text, "
                        + "token bigint NOT NULL)");
                s.execute("ALTER ROLE postgres SET synchronous_commit = off");
            }
            LeaseStatements sql = new LeaseStatements(schema);
            long token;
            try (Connection c = ds.getConnection()) {
                token = sql.acquire(c, "charger", "me", Duration.ofMinutes(5)).token();
            }
            Leadership leadership = new Grant(
                    "charger",
                    "me",
                    token,
                    Ticker.SYSTEM,
                    System.nanoTime() + Duration.ofMinutes(4).toNanos());
            try (PgLease pglease =
                    PgLease.create(ds, LeaseConfig.builder().schema(schema).build())) {
                for (int i = 0; i < WRITES; i++) {
                    pglease.inFencedTransaction(leadership, c -> charge(c, schema, "lease-row", token));
                    pglease.forwardFence()
                            .inTransaction(ds, "provider", leadership, c -> charge(c, schema, "forward", token));
                }
            }
            assertThat(count(ds, schema)).isEqualTo(2 * WRITES);
            server.crash();
            server.restart();
            assertThat(count(ds, schema))
                    .as("acknowledged fenced writes after a crash and restart")
                    .isEqualTo(2 * WRITES);
        }
    }

    private static int charge(Connection c, String schema, String kind, long token) throws SQLException {
        try (PreparedStatement ps =
                c.prepareStatement("INSERT INTO " + schema + ".charges (kind, token) VALUES (?, ?)")) {
            ps.setString(1, kind);
            ps.setLong(2, token);
            return ps.executeUpdate();
        }
    }

    private static int count(DataSource ds, String schema) throws SQLException {
        try (Connection c = ds.getConnection();
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT count(*) FROM " + schema + ".charges")) {
            rs.next();
            return rs.getInt(1);
        }
    }
}
