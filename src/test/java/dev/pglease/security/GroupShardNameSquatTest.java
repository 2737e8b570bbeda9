package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.GroupListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseGroup;
import dev.pglease.PgLease;
import java.time.Duration;
import java.util.Set;
import java.util.TreeSet;
import org.awaitility.Awaitility;
import org.awaitility.core.ConditionTimeoutException;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A candidate login that takes a shard's lease name once as an election (and gives it back at once) must not keep
 * the group from owning that shard: the attacker is gone, nothing holds the lease, and every shard of a group is
 * owned again once the group's members acquire it.
 */
@Tag("security")
@Timeout(60)
class GroupShardNameSquatTest {

    @Test
    void aShardNameTakenOnceAsAnElectionByAnotherLoginIsStillOwnedByTheGroupAfterItsRelease() throws Exception {
        HostileSchema h = HostileSchema.create();
        String group = "kind-" + System.nanoTime();
        // candidate B, not a member of anything, takes "<group>/0" as an election and releases it at once
        String token = HostileSchema.query(
                h.candB,
                "SELECT token FROM " + h.schema + ".acquire('" + group + "/0', 'attacker', 60000, 'election')");
        assertThat(HostileSchema.query(
                        h.candB, "SELECT " + h.schema + ".release('" + group + "/0', 'attacker', " + token + ")"))
                .isEqualTo("t");
        assertThat(h.row(group + "/0").holder())
                .as("nobody holds the lease now")
                .isNull();
        try (PgLease member = PgLease.create(
                        h.as(h.candA),
                        LeaseConfig.builder()
                                .schema(h.schema)
                                .holderLabel("member")
                                .leaseDuration(Duration.ofSeconds(3))
                                .renewDeadline(Duration.ofSeconds(2))
                                .retryPeriod(Duration.ofMillis(300))
                                .build());
                LeaseGroup g = member.group(group, 2, new GroupListener() {
                    @Override
                    public void onAssigned(int shard, Leadership leadership) {}

                    @Override
                    public void onRevoked(int shard, Leadership leadership) {}
                })) {
            Set<Integer> owned = new TreeSet<>();
            try {
                Awaitility.await("the only member owns both shards")
                        .atMost(Duration.ofSeconds(10))
                        .pollInterval(Duration.ofMillis(50))
                        .until(() -> {
                            owned.clear();
                            owned.addAll(g.ownedShards());
                            return owned.size() == 2;
                        });
            } catch (ConditionTimeoutException e) {
                throw new AssertionError("the group's only member owns " + owned + " of shards [0, 1] after 10 s;"
                        + " shard 0's lease row: " + h.row(group + "/0"));
            }
        }
    }
}
