package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import java.sql.SQLException;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A candidate login takes a free election under another process's holder id (holder ids are public). The refused
 * acquires of that process must cost what any refused acquire costs, and the lease it is listed on is not its grant:
 * it neither leads nor sends a loop of acquires and releases.
 */
@Tag("security")
@Timeout(60)
class HolderIdSquatTest {

    @Test
    void anElectionTakenUnderAnElectorsHolderIdByAnotherLoginCostsThatElectorNoLoopOfStatementsAndNoLeadership()
            throws Exception {
        HostileSchema h = HostileSchema.create();
        String lease = "squat-" + System.nanoTime();
        AtomicLong statements = new AtomicLong();
        try (PgLease victim = PgLease.create(
                GroupHolderIdSquatTest.counting(h.as(h.candA), "(acquire|release)", statements),
                LeaseConfig.builder()
                        .schema(h.schema)
                        .holderLabel("victim")
                        .leaseDuration(Duration.ofSeconds(30))
                        .renewDeadline(Duration.ofSeconds(20))
                        .retryPeriod(Duration.ofMillis(300))
                        .build())) {
            assertThat(HostileSchema.query(
                            h.candB,
                            "SELECT granted FROM " + h.schema + ".acquire('" + lease + "', '" + victim.holderId()
                                    + "', 60000)"))
                    .isEqualTo("t");
            try (Elector e = victim.elector(lease, new LeaderListener() {
                @Override
                public void onElected(Leadership leadership) {}

                @Override
                public void onRevoked(Leadership leadership) {}
            })) {
                Thread.sleep(500);
                long before = statements.get();
                Thread.sleep(3000);
                long during = statements.get() - before;
                assertThat(during)
                        .as("acquire/release statements the elector sent in 3 s (10 retry periods) for a lease another"
                                + " login holds under its holder id")
                        .isLessThanOrEqualTo(20);
                assertThat(e.isLeader())
                        .as("the elector leads a lease another login holds")
                        .isFalse();
            }
        }
    }

    @Test
    void aShardIsRefusedToALoginThatNamesAnotherLoginsLiveMemberAsHolder() throws Exception {
        HostileSchema h = HostileSchema.create();
        String group = "member-" + System.nanoTime();
        HostileSchema.query(
                h.candA, "SELECT shards FROM " + h.schema + ".group_join('" + group + "', 'a', 2, 1, 0, 60000)");
        assertThatThrownBy(() -> HostileSchema.query(
                        h.candB,
                        "SELECT granted FROM " + h.schema + ".acquire('" + group + "/1', 'a', 60000, 'shard')"))
                .isInstanceOf(SQLException.class)
                .hasMessageContaining("'a' is a live member of the group of shard '" + group + "/1'")
                .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isEqualTo("42501"));
        assertThat(HostileSchema.query(
                        h.candA,
                        "SELECT granted FROM " + h.schema + ".acquire('" + group + "/1', 'a', 60000, 'shard')"))
                .as("the member's own login takes it")
                .isEqualTo("t");
    }
}
