package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A cooperative move of a shard whose work in flight takes longer than the grant's renew deadline to drain.
 * {@link GroupListener#onRevoked} promises, for a planned move: "the grant is still valid during this call, so work in
 * flight may finish; stop starting new work, wait for what runs, then return: the shard is released only after this
 * returns"; docs/groups.md: "A stops reporting the shard ... and calls its listener's onRevoked(shard, leadership)
 * while the grant is still valid: work in flight finishes".
 *
 * <p>On main a shard being handed over is no longer renewed: its grant runs out at its local deadline in the middle
 * of {@code onRevoked}, and its lease expires in the database while the giver still drains, so the next owner takes
 * the shard (and is told {@code onAssigned}) before the giver's {@code onRevoked} has returned.
 */
@org.junit.jupiter.api.Timeout(120)
class GroupHandOverDrainTest {

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
                        .leaseDuration(Duration.ofMillis(1500))
                        .renewDeadline(Duration.ofMillis(1000))
                        .retryPeriod(Duration.ofMillis(250))
                        .build());
        opened.add(p);
        return p;
    }

    @Test
    void aGrantHandedOverStaysValidWhileItsOnRevokedDrainsAndTheNextOwnerWaitsForItToReturn() throws Exception {
        String group = "drain-" + System.nanoTime();
        Map<Integer, Leadership> takerAssigned = new ConcurrentHashMap<>();
        AtomicReference<Boolean> validAtTheEnd = new AtomicReference<>();
        AtomicReference<Boolean> nextOwnerFirst = new AtomicReference<>();
        LeaseGroup giver = member("giver").group(group, 2, new GroupListener() {
            @Override
            public void onAssigned(int shard, Leadership leadership) {}

            @Override
            public void onRevoked(int shard, Leadership leadership) {
                if (!leadership.isValid()) {
                    return; // not a planned move
                }
                // The work in flight drains for three lease durations, or until the next owner has the shard.
                boolean validThroughout = true;
                long end = System.nanoTime() + Duration.ofMillis(4500).toNanos();
                while (System.nanoTime() < end && !takerAssigned.containsKey(shard)) {
                    validThroughout &= leadership.isValid();
                    sleep(5);
                }
                validThroughout &= leadership.isValid();
                nextOwnerFirst.compareAndSet(null, takerAssigned.containsKey(shard));
                validAtTheEnd.compareAndSet(null, validThroughout);
            }
        });
        LeaseGroupTest.await(
                "the giver owns both shards", () -> giver.ownedShards().size() == 2);
        member("taker").group(group, 2, new GroupListener() {
            @Override
            public void onAssigned(int shard, Leadership leadership) {
                takerAssigned.put(shard, leadership);
            }

            @Override
            public void onRevoked(int shard, Leadership leadership) {}
        });
        LeaseGroupTest.await("the move drained", () -> validAtTheEnd.get() != null);
        assertThat(nextOwnerFirst.get())
                .as("the next owner was assigned the shard before the giver's onRevoked returned")
                .isFalse();
        assertThat(validAtTheEnd.get())
                .as("the giver's grant stayed valid during its onRevoked (a planned move)")
                .isTrue();
    }

    /**
     * Twelve of 24 shards move to a newcomer at once, and each {@code onRevoked} drains for 0.7 of the renew deadline,
     * well within it. On main the four callback threads a {@code PgLease} shares run the hand-overs four at a time,
     * and a shard waiting its turn is not renewed: by the third round its grant has run out before its
     * {@code onRevoked} even begins, and its lease expires, so the newcomer is assigned the shard while (or before) the
     * giver drains it.
     */
    @Test
    void manyShardsMovingAtOnceEachDrainWithAValidGrantBeforeTheNextOwnerGetsThem() throws Exception {
        String group = "many-" + System.nanoTime();
        Map<Integer, Long> takerAssignedAt = new ConcurrentHashMap<>();
        Map<Integer, Long> revokeReturnedAt = new ConcurrentHashMap<>();
        Map<Integer, Boolean> validAtStart = new ConcurrentHashMap<>();
        LeaseGroup giver = member("giver").group(group, 24, new GroupListener() {
            @Override
            public void onAssigned(int shard, Leadership leadership) {}

            @Override
            public void onRevoked(int shard, Leadership leadership) {
                validAtStart.put(shard, leadership.isValid());
                sleep(700); // the work in flight drains: well within the renew deadline (1 s)
                revokeReturnedAt.put(shard, System.nanoTime());
            }
        });
        LeaseGroupTest.await(
                "the giver owns every shard", () -> giver.ownedShards().size() == 24);
        member("taker").group(group, 24, new GroupListener() {
            @Override
            public void onAssigned(int shard, Leadership leadership) {
                takerAssignedAt.put(shard, System.nanoTime());
            }

            @Override
            public void onRevoked(int shard, Leadership leadership) {}
        });
        LeaseGroupTest.await(
                "twelve shards moved", () -> takerAssignedAt.size() == 12 && revokeReturnedAt.size() == 12);
        java.util.SortedMap<Integer, String> broken = new java.util.TreeMap<>();
        for (int shard : takerAssignedAt.keySet()) {
            if (!validAtStart.get(shard)) {
                broken.put(shard, "grant already invalid when onRevoked began");
            } else if (takerAssignedAt.get(shard) < revokeReturnedAt.get(shard)) {
                broken.put(shard, "the next owner was assigned it before the giver's onRevoked returned");
            }
        }
        assertThat(broken)
                .as("moved shards whose planned move broke its promise")
                .isEmpty();
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
