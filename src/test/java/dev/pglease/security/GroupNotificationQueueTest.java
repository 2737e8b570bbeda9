package dev.pglease.security;

import static dev.pglease.testkit.Lane.PG13;
import static dev.pglease.testkit.Lane.PG14;
import static dev.pglease.testkit.Lane.PG15;
import static dev.pglease.testkit.Lane.PG16;
import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.PgLease;
import dev.pglease.internal.tool.EmbeddedPostgresServer;
import dev.pglease.testkit.NotInLane;
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
 * A login in no pglease role that fills the server's notification queue (a listener idle in a transaction pins it)
 * must not stop lease groups from changing members: a notification is a wake-up only, as for every lease change, so
 * a join (and a leave) still goes through when the queue is full.
 */
@Tag("security")
class GroupNotificationQueueTest {

    @Test
    @NotInLane(
            value = {PG13, PG14, PG15, PG16},
            because =
                    "needs max_notify_queue_pages (PostgreSQL 17) to make the notification queue small enough to fill in a test")
    void aLoginThatFillsTheNotificationQueueDoesNotStopAMemberFromJoiningOrLeavingAGroup() throws Exception {
        try (EmbeddedPostgresServer server = EmbeddedPostgresServer.start(Map.of("max_notify_queue_pages", "64"))) {
            String s = "notify";
            PgLease.migrate(server.dataSource(), s);
            try (Connection su = server.dataSource().getConnection()) {
                exec(su, "CREATE ROLE member_a LOGIN IN ROLE " + s + "_candidate; CREATE ROLE nobody LOGIN");
            }
            try (Connection listener = login(server, "nobody").getConnection();
                    Connection sender = login(server, "nobody").getConnection();
                    Connection a = login(server, "member_a").getConnection()) {
                // joined before the flood, to leave during it
                value(a, "SELECT shards FROM " + s + ".group_join('before', 'member-a', 4, 1, 0, 60000)");
                exec(listener, "LISTEN flood");
                listener.setAutoCommit(false);
                value(listener, "SELECT 1");
                String full = null;
                for (int i = 0; i < 10_000 && full == null; i++) {
                    try {
                        value(sender, "SELECT pg_notify('flood', repeat('x', 7900))");
                    } catch (SQLException e) {
                        full = e.getMessage();
                    }
                }
                assertThat(full).as("the flood filled the queue").isNotNull();

                String join = attempt(
                        a,
                        "SELECT 'joined, ' || shards FROM " + s + ".group_join('during', 'member-a', 4, 1, 0, 60000)");
                String leave = attempt(a, "SELECT 'left ' || " + s + ".group_leave('before', 'member-a')");
                listener.rollback();
                assertThat(join + "; " + leave)
                        .as(
                                "a candidate's group_join and group_leave while a login keeps the notification queue full"
                                        + " (%s)",
                                full)
                        .isEqualTo("joined, 4; left true");
            }
        }
    }

    private static String attempt(Connection c, String sql) {
        try {
            return value(c, sql);
        } catch (SQLException e) {
            return e.getSQLState() + " " + e.getMessage();
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
