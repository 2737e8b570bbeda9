package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.PgLease;
import dev.pglease.internal.tool.EmbeddedPostgresServer;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Map;
import javax.sql.DataSource;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * A fenced transaction locks its lease row, so a successor waits for it; the server bounds that transaction by the
 * holder's deadline. The bound must hold against the holder's own login: a fenced transaction that clears its
 * timeouts, or that is prepared for two-phase commit, must not keep a successor waiting long past the deadline.
 */
@Tag("security")
class FencedRowLockBoundTest {

    private static final long LEASE_MS = 2000;
    private static final long GRACE_MS = 3000;

    /**
     * Documented limit: the server-side bounds are set in the holder's own transaction, so code running as the
     * holder's login can clear them and keep its own lease's row locked (pglease's Java client also aborts the
     * transaction at the holder's deadline; other clients must). It costs availability, not safety: the successor
     * waits, and is granted the moment that session ends (an administrator's pg_terminate_backend).
     */
    @Test
    void aFencedTransactionThatClearsItsTimeoutsOnlyDelaysItsSuccessorUntilItsSessionEnds() throws Exception {
        HostileSchema h = HostileSchema.create();
        String s = h.schema;
        try (Connection holder = h.as(h.candA).getConnection()) {
            String token = value(holder, "SELECT token FROM " + s + ".acquire('pinned', 'holder-a', " + LEASE_MS + ")");
            holder.setAutoCommit(false);
            value(holder, "SELECT " + s + ".fence('pinned', " + token + ")");
            String pid = value(holder, "SELECT pg_backend_pid()");
            exec(
                    holder,
                    "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0;"
                            + " SET LOCAL idle_in_transaction_session_timeout = 0");
            if (Integer.parseInt(value(holder, "SHOW server_version_num")) >= 170000) {
                exec(holder, "SET LOCAL transaction_timeout = 0");
            }
            Thread.sleep(LEASE_MS + 500);
            assertThat(successor(h.as(h.candB), s, 500))
                    .as("while the holder's session lives")
                    .startsWith("55P03");
            HostileSchema.query(null, "SELECT pg_terminate_backend(" + pid + ")");
            assertThat(successor(h.as(h.candB), s, GRACE_MS))
                    .as("once an administrator ended it")
                    .startsWith("granted");
        }
    }

    @Test
    void aPreparedFencedTransactionDoesNotKeepASuccessorWaitingPastTheDeadline() throws Exception {
        try (EmbeddedPostgresServer server = EmbeddedPostgresServer.start(Map.of("max_prepared_transactions", "4"))) {
            String s = "prepared";
            PgLease.migrate(server.dataSource(), s);
            try (Connection su = server.dataSource().getConnection()) {
                exec(
                        su,
                        "CREATE ROLE holder_a LOGIN IN ROLE " + s + "_candidate;"
                                + " CREATE ROLE holder_b LOGIN IN ROLE " + s + "_candidate");
            }
            try (Connection holder = login(server, "holder_a").getConnection()) {
                String token =
                        value(holder, "SELECT token FROM " + s + ".acquire('pinned', 'holder-a', " + LEASE_MS + ")");
                holder.setAutoCommit(false);
                value(holder, "SELECT " + s + ".fence('pinned', " + token + ")");
                try {
                    exec(holder, "PREPARE TRANSACTION 'pinned'");
                } catch (SQLException refused) {
                    // a fenced transaction can not be prepared: what the test asks for
                    assertThat(refused.getMessage()).contains("temporary objects");
                    holder.rollback();
                }
                holder.setAutoCommit(true);
            }
            Thread.sleep(LEASE_MS + 500);
            String successor;
            try {
                successor = successor(login(server, "holder_b"), s);
            } finally {
                try (Connection su = server.dataSource().getConnection()) {
                    if (value(su, "SELECT gid FROM pg_prepared_xacts WHERE gid = 'pinned'") != null) {
                        exec(su, "ROLLBACK PREPARED 'pinned'");
                    }
                }
            }
            assertThat(successor)
                    .as(
                            "a successor's acquire of the expired lease, waiting up to %s ms for the row lock of the holder's"
                                    + " prepared fenced transaction",
                            GRACE_MS)
                    .startsWith("granted");
        }
    }

    /** The successor's acquire, waiting at most {@code waitMillis} (GRACE_MS) for the row: "granted token", "denied ..." or the error. */
    private static String successor(DataSource ds, String schema) throws SQLException {
        return successor(ds, schema, GRACE_MS);
    }

    private static String successor(DataSource ds, String schema, long waitMillis) throws SQLException {
        try (Connection c = ds.getConnection()) {
            exec(c, "SET lock_timeout = '" + waitMillis + "ms'");
            try {
                String answer = value(
                        c,
                        "SELECT CASE WHEN granted THEN 'granted ' || token ELSE 'denied, held by '"
                                + " || coalesce(holder, 'nobody') END FROM " + schema
                                + ".acquire('pinned', 'holder-b', "
                                + LEASE_MS + ")");
                return answer;
            } catch (SQLException e) {
                return e.getSQLState() + " "
                        + e.getMessage().lines().findFirst().orElse("");
            }
        }
    }

    private static DataSource login(EmbeddedPostgresServer server, String user) {
        PGSimpleDataSource ds = (PGSimpleDataSource) server.dataSource();
        ds.setUser(user);
        return ds;
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
