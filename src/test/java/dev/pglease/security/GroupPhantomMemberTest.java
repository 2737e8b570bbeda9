package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.GroupListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseGroup;
import dev.pglease.PgLease;
import java.time.Duration;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Another candidate login joins a group with one statement (the largest weight, a member row that lives a day) and
 * never takes a shard. The group's live member holds its shards and keeps renewing them: it must not give them up to
 * a member that never takes them, leaving the group's shards without an owner for as long as that row lives.
 */
@Tag("security")
@Timeout(90)
class GroupPhantomMemberTest {

    @Test
    void aMemberThatNeverTakesItsShardsDoesNotLeaveTheGroupsShardsWithoutAnOwner() throws Exception {
        HostileSchema h = HostileSchema.create();
        String group = "phantom-" + System.nanoTime();
        Duration leaseDuration = Duration.ofSeconds(2);
        try (PgLease member = PgLease.create(
                        h.as(h.candA),
                        LeaseConfig.builder()
                                .schema(h.schema)
                                .holderLabel("member")
                                .leaseDuration(leaseDuration)
                                .renewDeadline(Duration.ofMillis(1500))
                                .retryPeriod(Duration.ofMillis(300))
                                .build());
                LeaseGroup g = member.group(group, 8, new GroupListener() {
                    @Override
                    public void onAssigned(int shard, Leadership leadership) {}

                    @Override
                    public void onRevoked(int shard, Leadership leadership) {}
                })) {
            Awaitility.await("the only member owns the 8 shards")
                    .atMost(Duration.ofSeconds(10))
                    .until(() -> g.ownedShards().size() == 8);
            // one statement by candidate B: a member of weight 1000 whose row lives a day, that never campaigns
            HostileSchema.query(
                    h.candB,
                    "SELECT shards FROM " + h.schema + ".group_join('" + group + "', 'phantom', 8, 1000, 0, 86400000)");
            Thread.sleep(leaseDuration.multipliedBy(3).toMillis());
            String owned = HostileSchema.query(
                    null,
                    "SELECT count(*) FROM " + h.schema + ".group_shard_status WHERE group_name = '" + group
                            + "' AND held");
            assertThat(owned)
                    .as(
                            "shards of the group with an owner, %s after another login joined a member that never takes"
                                    + " a shard (the live member owns %s)",
                            leaseDuration.multipliedBy(3), g.ownedShards())
                    .isEqualTo("8");
        }
    }

    @Test
    void aMemberThatKeepsRenewingButNeverTakesItsShardsLosesItsClaimWithinALeaseDuration() throws Exception {
        HostileSchema h = HostileSchema.create();
        String group = "renewing-" + System.nanoTime();
        Duration leaseDuration = Duration.ofSeconds(2);
        try (PgLease member = PgLease.create(
                        h.as(h.candA),
                        LeaseConfig.builder()
                                .schema(h.schema)
                                .holderLabel("member")
                                .leaseDuration(leaseDuration)
                                .renewDeadline(Duration.ofMillis(1500))
                                .retryPeriod(Duration.ofMillis(300))
                                .build());
                LeaseGroup g = member.group(group, 8, new GroupListener() {
                    @Override
                    public void onAssigned(int shard, Leadership leadership) {}

                    @Override
                    public void onRevoked(int shard, Leadership leadership) {}
                })) {
            Awaitility.await("the only member owns the 8 shards")
                    .atMost(Duration.ofSeconds(10))
                    .until(() -> g.ownedShards().size() == 8);
            HostileSchema.query(
                    h.candB,
                    "SELECT shards FROM " + h.schema + ".group_join('" + group + "', 'phantom', 8, 1000, 0, 86400000)");
            long end = System.nanoTime() + leaseDuration.multipliedBy(4).toNanos();
            while (System.nanoTime() < end) { // candidate B keeps its member row alive, and takes nothing
                assertThat(HostileSchema.query(
                                h.candB,
                                "SELECT count(*) FROM " + h.schema + ".group_renew('phantom', ARRAY['" + group
                                        + "'], NULL, NULL, 86400000)"))
                        .isEqualTo("1");
                Thread.sleep(300);
            }
            String owned = HostileSchema.query(
                    null,
                    "SELECT count(*) FROM " + h.schema + ".group_shard_status WHERE group_name = '" + group
                            + "' AND held");
            assertThat(owned)
                    .as(
                            "shards of the group with an owner, %s after another login joined a member that renews its"
                                    + " row and never takes a shard (the live member owns %s)",
                            leaseDuration.multipliedBy(4), g.ownedShards())
                    .isEqualTo("8");
        }
    }

    @Test
    void aNewcomersRowLivesNoLongerThanTheGroupsOtherMembersRowsAndAnOperatorRemovesAMemberAtOnce() throws Exception {
        HostileSchema h = HostileSchema.create();
        String group = "evict-" + System.nanoTime();
        HostileSchema.query(
                h.candA, "SELECT shards FROM " + h.schema + ".group_join('" + group + "', 'a', 4, 1, 0, 5000)");
        HostileSchema.query(
                h.candB,
                "SELECT shards FROM " + h.schema + ".group_join('" + group + "', 'phantom', 4, 1000, 0, 86400000)");
        assertThat(HostileSchema.query(
                        null,
                        "SELECT expires_at - renewed_at <= interval '5 seconds' FROM " + h.schema
                                + ".group_members WHERE group_name = '" + group + "' AND member = 'phantom'"))
                .as("the newcomer's row asked for a day, the group's other member renews for 5 s")
                .isEqualTo("t");
        assertThat(HostileSchema.query(h.operator, "SELECT " + h.schema + ".group_evict('" + group + "', 'phantom')"))
                .isEqualTo("t");
        assertThat(HostileSchema.query(
                        null,
                        "SELECT string_agg(member, ',') FROM " + h.schema + ".group_members WHERE group_name = '"
                                + group + "'"))
                .as("members left after the operator removed the phantom")
                .isEqualTo("a");
    }

    /**
     * A member's row lasts exactly the lease duration it asked for, from one instant: a join or a renewal that read
     * the clock twice gave rows a few microseconds longer, and a newcomer capped to such a row got it too (so a
     * newcomer's row could outlive the group's own lease duration).
     */
    @Test
    void aMembersRowLastsExactlyItsLeaseDurationAfterEveryJoinAndRenewal() throws Exception {
        HostileSchema h = HostileSchema.create();
        String group = "exact-" + System.nanoTime();
        String rows = "SELECT count(*) FILTER (WHERE expires_at - renewed_at <> interval '5 seconds' OR joined_at > "
                + "renewed_at) FROM " + h.schema + ".group_members WHERE group_name = '" + group + "'";
        int inexact = 0;
        for (int i = 0; i < 100; i++) {
            HostileSchema.query(
                    h.candA, "SELECT shards FROM " + h.schema + ".group_join('" + group + "', 'a', 4, 1, 0, 5000)");
            HostileSchema.query(
                    h.candB, "SELECT shards FROM " + h.schema + ".group_join('" + group + "', 'b', 4, 1, 0, 86400000)");
            HostileSchema.query(
                    h.candA,
                    "SELECT count(*) FROM " + h.schema + ".group_renew('a', ARRAY['" + group
                            + "'], ARRAY[]::text[], ARRAY[]::bigint[], 5000)");
            inexact += Integer.parseInt(HostileSchema.query(null, rows));
        }
        assertThat(inexact)
                .as(
                        "member rows whose expires_at - renewed_at is not the 5 s asked for, counted after each of 100 rounds")
                .isZero();
    }
}
