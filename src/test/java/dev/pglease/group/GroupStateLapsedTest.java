package dev.pglease.group;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.TestDatabase;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * {@code group_state} lists a shard whose grant lapsed (expired, not released) in a live member's hands as
 * {@code lapsed} with that member, so the assignment can give it back; a grant that was released, one whose holder is
 * no live member, one held under the member's id by another login, one an operator handed off and one its holder took
 * and last renewed before it joined again (after its membership expired) are not lapsed.
 */
@Tag("core")
class GroupStateLapsedTest {

    @Test
    void onlyAnExpiredUnreleasedGrantOfALiveMemberUnderItsOwnLoginIsLapsed() throws Exception {
        String s = TestDatabase.freshSchema();
        try (Connection c = TestDatabase.dataSource().getConnection();
                Statement st = c.createStatement()) {
            join(st, s, "m", 6);
            join(st, s, "n", 6);
            st.execute("SELECT " + s + ".acquire('g/' || k, 'm', 60000, 'shard') FROM generate_series(0, 5) AS k");
            st.execute("SELECT " + s + ".release('g/1', 'm', (SELECT token FROM " + s + ".leases WHERE name = 'g/1'))");
            st.execute("SELECT " + s + ".group_handoff('g', 4, 'n')");
            st.execute("UPDATE " + s + ".leases SET holder = 'outsider' WHERE name = 'g/2'");
            st.execute("UPDATE " + s + ".leases SET holder_role = 'another_login' WHERE name = 'g/3'");
            expireGrants(st, s, "g/0", "g/1", "g/2", "g/3", "g/4");

            assertThat(rows(st, s, "lapsed")).isEqualTo(Map.of(0, "m"));
            assertThat(rows(st, s, "handoff")).isEqualTo(Map.of(4, "m"));
            assertThat(rows(st, s, "shard")).isEqualTo(Map.of(5, "m"));

            st.execute("SELECT " + s + ".group_leave('g', 'm')");
            assertThat(rows(st, s, "lapsed")).as("once its holder left").isEmpty();
        }
    }

    @Test
    void aGrantHeldBeforeItsHolderJoinedAgainIsNotLapsedForTheNewMembership() throws Exception {
        String s = TestDatabase.freshSchema();
        try (Connection c = TestDatabase.dataSource().getConnection();
                Statement st = c.createStatement()) {
            join(st, s, "m", 4);
            join(st, s, "n", 4);
            st.execute("SELECT " + s + ".acquire('g/' || k, 'm', 60000, 'shard') FROM generate_series(0, 1) AS k");
            // m is cut off for longer than its lease: its membership and its grants expire, then it joins again
            expireMembership(st, s, "m");
            expireGrants(st, s, "g/0", "g/1");
            join(st, s, "m", 4);
            assertThat(rows(st, s, "lapsed"))
                    .as("grants of the membership that expired")
                    .isEmpty();

            st.execute("SELECT " + s + ".acquire('g/2', 'm', 60000, 'shard')");
            expireGrants(st, s, "g/2");
            assertThat(rows(st, s, "lapsed"))
                    .as("a grant of the new membership")
                    .isEqualTo(Map.of(2, "m"));
        }
    }

    @Test
    void aGrantTakenBeforeItsHolderJoinedAgainButRenewedSinceIsLapsedForTheNewMembership() throws Exception {
        String s = TestDatabase.freshSchema();
        try (Connection c = TestDatabase.dataSource().getConnection();
                Statement st = c.createStatement()) {
            join(st, s, "m", 4);
            join(st, s, "n", 4);
            st.execute("SELECT " + s + ".acquire('g/0', 'm', 60000, 'shard')");
            // m's membership and grant expire; its campaign takes the shard again before m joins again
            expireMembership(st, s, "m");
            expireGrants(st, s, "g/0");
            st.execute("SELECT " + s + ".acquire('g/0', 'm', 60000, 'shard')");
            join(st, s, "m", 4);
            st.execute("SELECT * FROM " + s + ".group_renew('m', ARRAY['g'], ARRAY['g/0'],"
                    + " ARRAY[(SELECT token FROM " + s + ".leases WHERE name = 'g/0')], 60000)");
            expireGrants(st, s, "g/0");
            assertThat(rows(st, s, "lapsed"))
                    .as("a grant the new membership renewed")
                    .isEqualTo(Map.of(0, "m"));
        }
    }

    private static void join(Statement st, String s, String member, int shards) throws SQLException {
        st.execute("SELECT * FROM " + s + ".group_join('g', '" + member + "', " + shards + ", 1, 0, 60000)");
    }

    private static void expireMembership(Statement st, String s, String member) throws SQLException {
        st.execute("UPDATE " + s + ".group_members SET expires_at = clock_timestamp() WHERE member = '" + member + "'");
    }

    private static void expireGrants(Statement st, String s, String... names) throws SQLException {
        st.execute("UPDATE " + s + ".leases SET expires_at = clock_timestamp() WHERE name IN ('"
                + String.join("', '", names) + "')");
    }

    private static Map<Integer, String> rows(Statement st, String s, String what) throws SQLException {
        Map<Integer, String> out = new TreeMap<>();
        try (ResultSet rs =
                st.executeQuery("SELECT shard, member FROM " + s + ".group_state('g') WHERE what = '" + what + "'")) {
            while (rs.next()) {
                out.put(rs.getInt(1), rs.getString(2));
            }
        }
        return out;
    }
}
