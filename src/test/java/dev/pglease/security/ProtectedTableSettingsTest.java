package dev.pglease.security;

import static dev.pglease.testkit.Lane.PG13;
import static dev.pglease.testkit.Lane.PG14;
import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.testkit.NotInLane;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A protected table refuses unfenced and stale writes whatever the writer's session settings: a replication role a
 * DBA let the writer set, or an isolation level whose snapshot still shows the lease as it was when the transaction
 * began.
 */
@Tag("security")
class ProtectedTableSettingsTest {

    private static HostileSchema h;
    private static String app;

    @BeforeAll
    static void setUp() throws Exception {
        h = HostileSchema.create();
        app = h.schema + "_app";
        HostileSchema.superuser("CREATE SCHEMA " + app + " AUTHORIZATION " + h.candA);
        HostileSchema.superuser("GRANT USAGE ON SCHEMA " + app + " TO " + h.candB);
    }

    @Test
    @NotInLane(
            value = {PG13, PG14},
            because =
                    "grants SET ON PARAMETER session_replication_role to a login, which PostgreSQL 15 introduced (before, only superusers may set it)")
    void aWriterAllowedToSetTheReplicationRoleIsStillRefused() throws Exception {
        HostileSchema.run(h.candA, "SELECT token FROM " + h.schema + ".acquire('replica', 'holder-a', 60000)");
        HostileSchema.run(h.candA, "CREATE TABLE " + app + ".replica_data (id int, v text)");
        HostileSchema.run(h.candA, "INSERT INTO " + app + ".replica_data VALUES (1, 'original')");
        HostileSchema.run(h.candA, "SELECT " + h.schema + ".protect('" + app + ".replica_data', 'replica')");
        HostileSchema.superuser("GRANT ALL ON " + app + ".replica_data TO " + h.candB);
        HostileSchema.superuser("GRANT SET ON PARAMETER session_replication_role TO " + h.candB);
        try (Attempt b = new Attempt(h, h.candB)) {
            b.run("SET session_replication_role = replica");
            b.run("UPDATE " + app + ".replica_data SET v = 'unfenced'");
            b.run("TRUNCATE " + app + ".replica_data");
            assertThat(HostileSchema.query(
                            null, "SELECT string_agg(id || ' ' || v, ', ') FROM " + app + ".replica_data"))
                    .as("protected table after unfenced writes with session_replication_role = replica:\n%s", b)
                    .isEqualTo("1 original");
        }
    }

    /**
     * Documented behaviour: under REPEATABLE READ the guard reads the lease row as of the transaction's snapshot, so a
     * release by the holder itself after the fence is not seen and the write is accepted; but a successor's grant
     * still waits for the transaction, so the write lands before any successor.
     */
    @Test
    void underRepeatableReadTheHoldersOwnReleaseIsNotSeenButASuccessorStillWaitsForTheWrite() throws Exception {
        String s = h.schema;
        HostileSchema.run(
                h.candA,
                "CREATE TABLE " + app + ".snapshot_data (v text, at timestamptz DEFAULT" + " clock_timestamp())");
        HostileSchema.run(h.candA, "SELECT " + s + ".protect('" + app + ".snapshot_data', 'released')");
        String token;
        try (Connection a = h.as(h.candA).getConnection()) {
            token = value(a, "SELECT token FROM " + s + ".acquire('released', 'holder-a', 60000)");
        }
        java.util.concurrent.CompletableFuture<String> successor;
        try (Connection writer = h.as(h.candA).getConnection()) {
            writer.setAutoCommit(false);
            exec(writer, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
            value(writer, "SELECT " + s + ".fence('released', " + token + ")");
            try (Connection other = h.as(h.candA).getConnection()) {
                assertThat(value(other, "SELECT " + s + ".release('released', 'holder-a', " + token + ")"))
                        .isEqualTo("t");
            }
            successor = java.util.concurrent.CompletableFuture.supplyAsync(() -> {
                try (Connection b = h.as(h.candB).getConnection()) {
                    return value(b, "SELECT token FROM " + s + ".acquire('released', 'holder-b', 60000)");
                } catch (SQLException e) {
                    throw new IllegalStateException(e);
                }
            });
            Thread.sleep(300);
            assertThat(successor)
                    .as("the successor waits for the fenced transaction")
                    .isNotDone();
            exec(writer, "INSERT INTO " + app + ".snapshot_data (v) VALUES ('after the release')");
            writer.commit();
        }
        String next = successor.get(10, java.util.concurrent.TimeUnit.SECONDS);
        assertThat(Long.parseLong(next)).isGreaterThan(Long.parseLong(token));
        assertThat(HostileSchema.query(
                        null,
                        "SELECT bool_and(d.at < l.acquired_at) FROM " + app + ".snapshot_data d, " + s
                                + ".leases l WHERE l.name = 'released'"))
                .as("the write committed before the successor's grant")
                .isEqualTo("t");
    }

    private static void exec(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement()) {
            st.execute(sql);
        }
    }

    private static String value(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement();
                ResultSet rs = st.executeQuery(sql)) {
            return rs.next() ? rs.getString(1) : null;
        }
    }
}
