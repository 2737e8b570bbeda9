package dev.pglease.group;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.TestDatabase;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * {@code group_state} reads the group at one instant: a shard whose lease expires while the read runs is either
 * held (with its holder, token and grant time) or not listed, never a row that is half of each. Every member reads
 * the group at the expiry of a lost member's shards, so a read torn at that instant would fail exactly when the
 * group needs it.
 */
@Tag("core")
class GroupStateAtExpiryTest {

    @Test
    void aShardExpiringDuringTheReadIsListedWholeOrNotAtAll() throws Exception {
        String s = TestDatabase.freshSchema();
        int shards = 2048;
        try (Connection c = TestDatabase.dataSource().getConnection();
                Statement st = c.createStatement()) {
            long torn = 0;
            long reads = 0;
            for (int round = 0; round < 4 && torn == 0; round++) {
                String group = "expiry-" + round;
                st.execute("SELECT * FROM " + s + ".group_join('" + group + "', 'm', " + shards + ", 1, 0, 60000)");
                // the grants expire one after another over the few hundred ms it takes to make them
                st.execute("SELECT " + s + ".acquire('" + group + "/' || k, 'm', 600, 'shard') FROM generate_series(0, "
                        + (shards - 1) + ") AS k");
                // reads for one second on the server, across every expiry; the argument refers to the loop's row, so
                // each read runs the function again instead of rewinding the first one's result
                try (ResultSet rs = st.executeQuery(
                        "WITH RECURSIVE reads(n, bad) AS (SELECT 0, 0::bigint UNION ALL "
                                + "SELECT n + 1, (SELECT count(*) FROM " + s
                                + ".group_state(CASE WHEN reads.n >= 0 THEN '" + group
                                + "' END) g WHERE ((g.what = 'shard' AND (g.acquired_at IS NULL OR g.member IS NULL)) "
                                + "OR (g.what = 'handoff' AND g.member IS NULL))) "
                                + "FROM reads WHERE clock_timestamp() < now() + interval '1 second') SELECT count(*), sum(bad) FROM reads")) {
                    rs.next();
                    reads += rs.getLong(1);
                    torn += rs.getLong(2);
                }
            }
            assertThat(reads).as("reads made").isGreaterThan(0);
            assertThat(torn)
                    .as("rows of group_state that were half a held shard and half a free one, over %d reads", reads)
                    .isZero();
        }
    }
}
