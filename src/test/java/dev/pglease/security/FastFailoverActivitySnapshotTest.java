package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Fast failover decides that a holder's session is gone by looking for its backend in {@code pg_stat_activity}.
 * PostgreSQL keeps one copy of that view per transaction, taken when the transaction first reads it: a standby whose
 * transaction read it before the holder connected must still find the holder's live session, and may not take its
 * lease over.
 */
@Tag("security")
class FastFailoverActivitySnapshotTest {

    @Test
    void aStandbyWhoseTransactionBeganBeforeTheHolderConnectedCanNotTakeOverItsLiveLease() throws Exception {
        HostileSchema h = HostileSchema.create();
        String s = h.schema;
        try (Connection standby = h.as(h.candB).getConnection()) {
            standby.setAutoCommit(false);
            value(standby, "SELECT count(*) FROM pg_stat_activity");
            try (Connection holder = h.as(h.candA).getConnection()) {
                assertThat(value(holder, "SELECT " + s + ".fast_failover_lock('snapshot', 0)"))
                        .isEqualTo("t");
                String token = value(holder, "SELECT token FROM " + s + ".acquire('snapshot', 'holder-a', 60000)");
                assertThat(value(
                                holder,
                                "SELECT " + s + ".fast_failover_register('snapshot', 'holder-a', " + token + ")"))
                        .as("the holder registered its grant from its live session")
                        .isEqualTo("t");

                String taken =
                        value(standby, "SELECT " + s + ".fast_failover_take_over('snapshot', 'standby-b', 60000)");
                standby.commit();

                assertThat(taken)
                        .as(
                                "token the standby got for a lease whose holder's session (pid %s) is alive",
                                value(holder, "SELECT pg_backend_pid()"))
                        .isNull();
                assertThat(h.row("snapshot").holder()).isEqualTo("holder-a");
            }
        }
    }

    private static String value(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement();
                ResultSet rs = st.executeQuery(sql)) {
            return rs.next() ? rs.getString(1) : null;
        }
    }
}
