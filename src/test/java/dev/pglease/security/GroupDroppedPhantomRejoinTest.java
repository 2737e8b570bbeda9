package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.GroupConfig;
import dev.pglease.LeaseGroup;
import dev.pglease.PgLease;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A phantom member (another candidate login that joins and renews its row but never takes a shard) loses its claim
 * and costs the group nothing more: docs/threat-model.md, "a member that does not take a free shard it is given
 * within a lease duration loses its claim". A healthy member that joins later, whose share by the assignment without
 * the phantom is nothing (weights 6 and 2 over two shards: 1.5 and 0.5, the tie to the earlier member), is then a
 * member with no shard by the rule the others follow: it must not leave and join the group again and again for it.
 */
@Tag("security")
@Timeout(90)
class GroupDroppedPhantomRejoinTest {

    private static final Duration LEASE = FastCandidates.LEASE;
    private final FastCandidates members = new FastCandidates();

    @AfterEach
    void closeAll() throws Exception {
        members.close();
    }

    @Test
    void aMemberThatJoinsAfterAPhantomLostItsClaimDoesNotJoinAgainAndAgain() throws Exception {
        HostileSchema h = HostileSchema.create();
        String group = "phantom-" + System.nanoTime();
        LeaseGroup a = members.member(h, "a").group(group, 2, GroupConfig.weight(6), FastCandidates.QUIET);
        Awaitility.await("a owns both shards")
                .atMost(Duration.ofSeconds(15))
                .until(() -> a.ownedShards().size() == 2);

        // candidate B joins as a phantom of weight 6 (its share is one shard), renews its row and takes nothing
        String join = "SELECT shards FROM " + h.schema + ".group_join('" + group + "', 'phantom', 2, %d, 0, "
                + LEASE.toMillis() + ")";
        HostileSchema.query(h.candB, join.formatted(6));
        ScheduledExecutorService renewer = Executors.newSingleThreadScheduledExecutor();
        members.add(renewer::shutdownNow);
        String renew = "SELECT count(*) FROM " + h.schema + ".group_renew('phantom', ARRAY['" + group
                + "'], ARRAY[]::text[], ARRAY[]::bigint[], " + LEASE.toMillis() + ")";
        renewer.scheduleAtFixedRate(
                () -> {
                    try {
                        HostileSchema.query(h.candB, renew);
                    } catch (java.sql.SQLException e) {
                        throw new IllegalStateException(e);
                    }
                },
                200,
                200,
                TimeUnit.MILLISECONDS);
        Thread.sleep(LEASE.multipliedBy(5).toMillis());
        assertThat(a.ownedShards())
                .as("a owns both shards again, the phantom having lost its claim")
                .hasSize(2);
        // the phantom refreshes its row with weight 1 (same join time: it stays without a claim)
        HostileSchema.query(h.candB, join.formatted(1));

        PgLease n = members.member(h, "n");
        LeaseGroup ng = n.group(group, 2, GroupConfig.weight(2), FastCandidates.QUIET);
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
        // the churn this test is about comes back every five lease durations: three joins more in sixteen. One more
        // join can be a stall of the test JVM that cost the member its membership (it leaves by expiry, as designed)
        assertThat(joinTimes)
                .as(
                        "member n's join times over sixteen lease durations (each one more is a leave and a join);"
                                + " a owns %s, n owns %s",
                        a.ownedShards(), ng.ownedShards())
                .hasSizeLessThanOrEqualTo(2);
    }
}
