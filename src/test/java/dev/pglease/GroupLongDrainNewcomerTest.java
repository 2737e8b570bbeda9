package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * A newcomer waiting for a shard whose giver is still draining it ({@code onRevoked} running, the grant kept valid by
 * its renewals) is a healthy member: docs/groups.md says "a shard still being handed over stays held, so a long drain
 * does not count", and {@link GroupListener#onRevoked} allows a drain of any length ("A keeps renewing the grant for
 * as long as onRevoked runs, however long the drain takes"). So the newcomer keeps its place in the group (its join
 * time) for as long as the drain lasts, and does not leave and join again.
 */
@Timeout(90)
class GroupLongDrainNewcomerTest {

    private static final Duration LEASE = Duration.ofMillis(1000);
    private static String schema;
    private final List<PgLease> opened = new ArrayList<>();

    @BeforeAll
    static void migrate() {
        schema = TestDatabase.freshSchema();
    }

    @AfterEach
    void closeAll() {
        opened.forEach(PgLease::close);
    }

    private PgLease member(String label) {
        PgLease p = PgLease.create(
                TestDatabase.dataSource(),
                LeaseConfig.builder()
                        .schema(schema)
                        .holderLabel(label)
                        .leaseDuration(LEASE)
                        .renewDeadline(Duration.ofMillis(600))
                        .retryPeriod(Duration.ofMillis(200))
                        .build());
        opened.add(p);
        return p;
    }

    @Test
    void aNewcomerWaitingForAShardThatIsStillBeingDrainedKeepsItsJoinTimeHoweverLongTheDrain() throws Exception {
        String group = "long-drain-" + System.nanoTime();
        AtomicBoolean drained = new AtomicBoolean();
        AtomicReference<Boolean> validThroughout = new AtomicReference<>();
        LeaseGroup giver = member("giver").group(group, 2, new GroupListener() {
            @Override
            public void onAssigned(int shard, Leadership leadership) {}

            @Override
            public void onRevoked(int shard, Leadership leadership) {
                if (!leadership.isValid()) {
                    return; // not a planned move
                }
                // work in flight drains for eight lease durations; the grant stays valid all along
                boolean valid = true;
                long end = System.nanoTime() + LEASE.multipliedBy(8).toNanos();
                while (System.nanoTime() < end) {
                    valid &= leadership.isValid();
                    sleep(10);
                }
                validThroughout.compareAndSet(null, valid && leadership.isValid());
                drained.set(true);
            }
        });
        LeaseGroupTest.await(
                "the giver owns both shards", () -> giver.ownedShards().size() == 2);

        PgLease takerLease = member("taker");
        LeaseGroup taker = takerLease.group(group, 2, new LeaseGroupTest.Recorder());
        Set<String> joinTimes = new LinkedHashSet<>();
        long end = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!drained.get() && System.nanoTime() < end) {
            String joinedAt = joinedAt(group, takerLease.holderId());
            if (joinedAt != null) {
                joinTimes.add(joinedAt);
            }
            Thread.sleep(50);
        }
        LeaseGroupTest.await(
                "the taker owns the drained shard", () -> taker.ownedShards().size() == 1);

        assertThat(validThroughout.get())
                .as("the giver's grant stayed valid through its drain (a planned move)")
                .isTrue();
        assertThat(joinTimes)
                .as("the newcomer's join times while the giver drained its shard (it left and joined again when"
                        + " there is more than one)")
                .hasSize(1);
    }

    private static String joinedAt(String group, String member) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT joined_at::text FROM " + schema
                        + ".group_member_status WHERE group_name = ? AND member = ? AND live")) {
            ps.setString(1, group);
            ps.setString(2, member);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getString(1) : null;
            }
        }
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
