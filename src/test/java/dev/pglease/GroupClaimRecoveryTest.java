package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.security.FastCandidates;
import dev.pglease.security.HostileSchema;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A member that lost its claim to shards in the other members' eyes (its row was live while it took none of the
 * shards given to it) gets its share again once it runs: its process joins as a new member, so it does not stay a
 * live member with no shard while the others hold more than theirs.
 */
@Timeout(90)
class GroupClaimRecoveryTest {

    private static final Duration LEASE = FastCandidates.LEASE;
    private final FastCandidates members = new FastCandidates();

    @AfterEach
    void closeAll() throws Exception {
        members.close();
    }

    @Test
    void aMemberWhoseClaimTheOthersDroppedGetsItsShareOnceItRuns() throws Exception {
        HostileSchema h = HostileSchema.create();
        String group = "recover-" + System.nanoTime();
        LeaseGroupTest.Recorder quiet = new LeaseGroupTest.Recorder();
        LeaseGroup a = members.member(h, "a").group(group, 6, quiet);
        LeaseGroup b = members.member(h, "b").group(group, 6, new LeaseGroupTest.Recorder());
        PgLease c = members.member(h, "c");
        Awaitility.await("a and b own three shards each")
                .atMost(Duration.ofSeconds(20))
                .until(() -> a.ownedShards().size() == 3 && b.ownedShards().size() == 3);

        // c's row is live and renewed (by hand, as c's process would while its shard campaigns were stuck), but c
        // takes none of the shards given to it: a and b drop its claim and keep all six
        String join = "SELECT shards FROM " + h.schema + ".group_join('" + group + "', '" + c.holderId()
                + "', 6, 1, 0, " + LEASE.toMillis() + ")";
        HostileSchema.query(h.candA, join);
        ScheduledExecutorService renewer = Executors.newSingleThreadScheduledExecutor();
        members.add(renewer::shutdownNow);
        String renew = "SELECT count(*) FROM " + h.schema + ".group_renew('" + c.holderId() + "', ARRAY['" + group
                + "'], ARRAY[]::text[], ARRAY[]::bigint[], " + LEASE.toMillis() + ")";
        renewer.scheduleAtFixedRate(
                () -> {
                    try {
                        HostileSchema.query(h.candA, renew);
                    } catch (java.sql.SQLException e) {
                        throw new IllegalStateException(e);
                    }
                },
                200,
                200,
                TimeUnit.MILLISECONDS);
        Thread.sleep(LEASE.multipliedBy(4).toMillis());
        assertThat(a.ownedShards().size() + b.ownedShards().size())
                .as("a and b own every shard again, c having lost its claim")
                .isEqualTo(6);

        // c's process runs again: it joins under the same id while its row is still live
        LeaseGroup cg = c.group(group, 6, new LeaseGroupTest.Recorder());
        renewer.shutdownNow();
        Awaitility.await("c owns its share, two shards each")
                .atMost(LEASE.multipliedBy(8))
                .until(() -> cg.ownedShards().size() == 2
                        && a.ownedShards().size() == 2
                        && b.ownedShards().size() == 2);
    }
}
