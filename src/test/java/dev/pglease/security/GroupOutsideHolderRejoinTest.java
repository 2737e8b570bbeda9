package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.LeaseGroup;
import dev.pglease.PgLease;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.Set;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Another candidate login that holds one of a group's shards under an id of its own (it is no member; the group takes
 * the shard once it is free, a documented limit) costs the group that shard, and nothing more: it must not make a
 * healthy member (one that joined once and campaigns for what it is given) leave and join the group again and again.
 * Each such rejoin deletes and inserts the member's row, wakes every member twice and moves the member to the end of
 * the member order.
 */
@Tag("security")
@Timeout(90)
class GroupOutsideHolderRejoinTest {

    private static final Duration LEASE = FastCandidates.LEASE;
    private final FastCandidates members = new FastCandidates();

    @AfterEach
    void closeAll() throws Exception {
        members.close();
    }

    @Test
    void aShardHeldByAnotherLoginOutsideTheGroupDoesNotMakeTheMemberItIsGivenJoinAgainAndAgain() throws Exception {
        HostileSchema h = HostileSchema.create();
        String group = "outside-" + System.nanoTime();
        // candidate B, no member of the group, holds shard 1 under an id of its own for a minute
        HostileSchema.query(
                h.candB, "SELECT token FROM " + h.schema + ".acquire('" + group + "/1', 'outsider', 60000, 'shard')");

        LeaseGroup a = members.member(h, "a").group(group, 2, FastCandidates.QUIET);
        Awaitility.await("a owns shard 0")
                .atMost(Duration.ofSeconds(15))
                .until(() -> a.ownedShards().contains(0));
        PgLease n = members.member(h, "n");
        n.group(group, 2, FastCandidates.QUIET); // the assignment gives n shard 1, which the outsider holds

        String joinedAt = "SELECT coalesce(max(joined_at)::text, '') FROM " + h.schema
                + ".group_member_status WHERE group_name = '" + group + "' AND member = '" + n.holderId()
                + "' AND live";
        Set<String> joinTimes = new LinkedHashSet<>();
        long end = System.nanoTime() + LEASE.multipliedBy(16).toNanos();
        while (System.nanoTime() < end) {
            String t = HostileSchema.query(h.observer, joinedAt);
            if (!t.isEmpty()) {
                joinTimes.add(t);
            }
            Thread.sleep(50);
        }
        assertThat(h.row(group + "/1").holder())
                .as("the outsider still holds shard 1")
                .isEqualTo("outsider");
        // the churn this test is about comes back every five lease durations: three joins more in sixteen. One more
        // join can be a stall of the test JVM that cost the member its membership (it leaves by expiry, as designed)
        assertThat(joinTimes)
                .as("member n's join times over sixteen lease durations (each one more is a leave and a join)")
                .hasSizeLessThanOrEqualTo(2);
    }
}
