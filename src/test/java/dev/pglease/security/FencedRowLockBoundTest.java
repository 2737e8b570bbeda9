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
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * A fenced transaction locks its lease row, so a successor waits for it; the server bounds that transaction by the
 * holder's deadline. The bound must hold against the holder's own login: a fenced transaction that clears its
 * timeouts, or that is prepared for two-phase commit, must not keep a successor waiting long past the deadline.
 */
class FencedRowLockBoundTest {

    private static final long LEASE_MS = 2000;
    private static final long GRACE_MS = 3000;

    @Test
    void aFencedTransactionThatClearsItsTimeoutsDoesNotKeepASuccessorWaitingPastTheDeadline() throws Exception {
        HostileSchema h = HostileSchema.create();
        String s = h.schema;
        try (Connection holder = h.as(h.candA).getConnection()) {
            String token = value(holder, "SELECT token FROM " + s + ".acquire('pinned', 'holder-a', " + LEASE_MS + ")");
            holder.setAutoCommit(false);
            value(holder, "SELECT " + s + ".fence('pinned', " + token + ")");
            exec(
                    holder,
                    "SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = 0;"
                            + " SET LOCAL idle_in_transaction_session_timeout = 0");
            if (Integer.parseInt(value(holder, "SHOW server_version_num")) >= 170000) {
                exec(holder, "SET LOCAL transaction_timeout = 0");
            }
            Thread.sleep(LEASE_MS + 500);
            String successor = successor(h.as(h.candB), s);
            try {
                holder.rollback();
            } catch (SQLException ended) {
                // the server ended the holder's session at its bound: what the bound is for
            }
            assertThat(successor)
                    .as(
                            "a successor's acquire of the expired lease, waiting up to %s ms for the row lock of the holder's"
                                    + " fenced transaction that cleared its timeouts",
                            GRACE_MS)
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
                exec(holder, "PREPARE TRANSACTION 'pinned'");
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

    /** The successor's acquire, waiting at most GRACE_MS for the row: "granted token", "denied ..." or the error. */
    private static String successor(DataSource ds, String schema) throws SQLException {
        try (Connection c = ds.getConnection()) {
            exec(c, "SET lock_timeout = '" + GRACE_MS + "ms'");
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
