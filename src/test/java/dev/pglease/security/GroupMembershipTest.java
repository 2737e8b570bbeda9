package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.sql.SQLException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Lease group membership in SQL, login by login (schema migrated by a non-superuser owner): a member row is joined,
 * renewed and left only by the login that joined it, the rows are written by nobody but the owner, and the reads
 * are the same for the three roles.
 */
@Tag("security")
class GroupMembershipTest {

    private static HostileSchema h;

    @BeforeAll
    static void setUp() {
        h = HostileSchema.create();
    }

    private static String join(String group, String member, int shards) {
        return "SELECT shards FROM " + h.schema + ".group_join('" + group + "', '" + member + "', " + shards
                + ", 1, 0, 60000)";
    }

    private static String renewMembers(String group, String member) {
        return "SELECT count(*) FROM " + h.schema + ".group_renew('" + member + "', ARRAY['" + group
                + "'], ARRAY[]::text[], ARRAY[]::bigint[], 60000) WHERE what = 'member'";
    }

    private static String leave(String group, String member) {
        return "SELECT " + h.schema + ".group_leave('" + group + "', '" + member + "')";
    }

    @Test
    void aMemberJoinsRenewsAndLeavesByItsOwnLoginOnly() throws Exception {
        String group = "own-" + System.nanoTime();
        assertThat(HostileSchema.query(h.candA, join(group, "member-a", 8))).isEqualTo("8");
        assertThat(HostileSchema.query(h.candA, renewMembers(group, "member-a")))
                .isEqualTo("1");
        assertThat(HostileSchema.query(h.candB, renewMembers(group, "member-a")))
                .as("another login renews nothing of it")
                .isEqualTo("0");
        assertThat(HostileSchema.query(h.candB, leave(group, "member-a")))
                .as("another login can not remove it")
                .isEqualTo("f");
        assertThatThrownBy(() -> HostileSchema.query(h.candB, join(group, "member-a", 8)))
                .as("another login can not take over a live member id")
                .isInstanceOf(SQLException.class)
                .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isEqualTo("42501"));
        assertThat(liveMembers(group)).isEqualTo("member-a");
        assertThat(HostileSchema.query(h.candA, leave(group, "member-a"))).isEqualTo("t");
        assertThat(liveMembers(group)).isNull();
    }

    @Test
    void aMemberWithAnotherNumberOfShardsIsRefusedWhileOthersAreLiveAndMayResizeAnEmptyGroup() throws Exception {
        String group = "size-" + System.nanoTime();
        HostileSchema.query(h.candA, join(group, "first", 12));
        assertThatThrownBy(() -> HostileSchema.query(h.candB, join(group, "second", 8)))
                .isInstanceOf(SQLException.class)
                .hasMessageContaining("12 shards")
                .hasMessageContaining("with 8")
                .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isEqualTo("22023"));
        HostileSchema.query(h.candA, leave(group, "first"));
        assertThat(HostileSchema.query(h.candB, join(group, "second", 8))).isEqualTo("8");
    }

    @Test
    void badNumbersAreRefusedWithTheValue() {
        assertThatThrownBy(() -> HostileSchema.query(h.candA, join("bad-" + System.nanoTime(), "m", 0)))
                .hasMessageContaining("got 0");
        assertThatThrownBy(() -> HostileSchema.query(
                        h.candA, "SELECT * FROM " + h.schema + ".group_join('g', 'm', 4, 1001, 0, 1000)"))
                .hasMessageContaining("weight")
                .hasMessageContaining("got 1001");
        assertThatThrownBy(() -> HostileSchema.query(
                        h.candA, "SELECT * FROM " + h.schema + ".group_join('g', 'm', 4, 1, -1001, 1000)"))
                .hasMessageContaining("priority")
                .hasMessageContaining("got -1001");
        assertThatThrownBy(() -> HostileSchema.query(
                        h.candA, "SELECT * FROM " + h.schema + ".group_join('g', E'm\\u202E', 4, 1, 0, 1000)"))
                .hasMessageContaining("member id");
    }

    @Test
    void noLoginButTheOwnerWritesTheGroupTablesDirectly() throws Exception {
        String group = "direct-" + System.nanoTime();
        HostileSchema.query(h.candA, join(group, "member-a", 4));
        for (String login : new String[] {h.candA, h.candB, h.observer, h.operator, h.nobody}) {
            for (String sql : new String[] {
                "UPDATE " + h.schema + ".group_members SET expires_at = clock_timestamp() + interval '1 day'",
                "DELETE FROM " + h.schema + ".group_members",
                "INSERT INTO " + h.schema + ".group_members (group_name, member, member_role, weight, priority,"
                        + " expires_at) VALUES ('" + group + "', 'x', 'x', 1, 0, clock_timestamp())",
                "UPDATE " + h.schema + ".lease_groups SET shards = 1",
                "TRUNCATE " + h.schema + ".group_members CASCADE"
            }) {
                assertThatThrownBy(() -> HostileSchema.run(login, sql))
                        .as("%s: %s", login, sql)
                        .isInstanceOf(SQLException.class);
            }
        }
        assertThat(liveMembers(group)).isEqualTo("member-a");
    }

    @Test
    void theThreeRolesReadTheGroupStateAndViews() throws Exception {
        String group = "read-" + System.nanoTime();
        HostileSchema.query(h.candA, join(group, "member-a", 3));
        for (String login : new String[] {h.candB, h.observer, h.operator}) {
            assertThat(HostileSchema.query(
                            login,
                            "SELECT string_agg(what || ':' || coalesce(member, '') || ':' || coalesce(shard, -1), ','"
                                    + " ORDER BY what) FROM " + h.schema + ".group_state('" + group + "')"))
                    .isEqualTo("group::3,member:member-a:-1");
            assertThat(HostileSchema.query(
                            login,
                            "SELECT count(*) FROM " + h.schema + ".group_shard_status WHERE group_name = '" + group
                                    + "'"))
                    .isEqualTo("3");
            assertThat(HostileSchema.query(
                            login,
                            "SELECT member || ' ' || live FROM " + h.schema
                                    + ".group_member_status WHERE group_name = '" + group + "'"))
                    .isEqualTo("member-a true");
        }
        assertThatThrownBy(() -> HostileSchema.query(h.nobody, "SELECT * FROM " + h.schema + ".group_state('x')"))
                .isInstanceOf(SQLException.class);
    }

    private static String liveMembers(String group) throws SQLException {
        return HostileSchema.query(
                null,
                "SELECT string_agg(member, ',') FROM " + h.schema + ".group_members WHERE group_name = '" + group
                        + "' AND expires_at > clock_timestamp()");
    }
}
