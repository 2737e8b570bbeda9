package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseObserver;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Test;

/**
 * A mixed deployment: a plain-mode holder (never registered for crash takeover, it never takes the lease's lock) with
 * fast-failover standbys. docs/fast-failover.md: "A plain-mode grant, never registered, is never taken before it
 * expires, by anyone", so there is nothing for such a standby to wait on and nothing to look for before the lease
 * expires: apart from two looks a retryPeriod apart after its first refusal (the holder might have been a fast-failover
 * one about to register), it stays an idle standby, at most two looks per lease duration (docs/performance.md, idle
 * standbys).
 */
class FastFailoverStandbysOfAPlainHolderTest {

    private static final LeaderListener QUIET = new LeaderListener() {
        @Override
        public void onElected(Leadership leadership) {}

        @Override
        public void onRevoked(Leadership leadership) {}
    };

    /** The ticker readings of one standby's acquire statements. */
    private static final class Looks implements LeaseObserver {
        final ConcurrentLinkedQueue<Long> at = new ConcurrentLinkedQueue<>();

        @Override
        public void acquireAttempted(String leaseName, boolean granted, long token, Duration latency) {
            at.add(System.nanoTime());
        }

        long within(long from, long to) {
            return at.stream().filter(t -> t >= from && t < to).count();
        }

        /** Gaps between consecutive looks shorter than {@code bound}, in ms. */
        List<Long> gapsBelow(Duration bound) {
            List<Long> gaps = new ArrayList<>();
            Long previous = null;
            for (long t : at) {
                if (previous != null && t - previous < bound.toNanos()) {
                    gaps.add((t - previous) / 1_000_000);
                }
                previous = t;
            }
            return gaps;
        }
    }

    private static LeaseConfig config(
            String schema, String label, boolean fastFailover, Duration lease, Duration retry, LeaseObserver o) {
        return LeaseConfig.builder()
                .schema(schema)
                .holderLabel(label)
                .leaseDuration(lease)
                .renewDeadline(lease.multipliedBy(6).dividedBy(10))
                .retryPeriod(retry)
                .fastFailover(fastFailover)
                .observer(o)
                .build();
    }

    @Test
    void aFastFailoverStandbyOfAPlainModeHolderLooksAtMostTwicePerLeaseDuration() throws Exception {
        dev.pglease.Required.assume(!TestDatabase.throughPooler(), "a direct connection (fast failover's own lane)");
        String schema = TestDatabase.freshSchema();
        String lease = "plain-holder";
        Duration leaseDuration = Duration.ofSeconds(2);
        Duration retry = Duration.ofMillis(200);
        Looks looks = new Looks();
        try (PgLease holder = PgLease.create(
                        TestDatabase.dataSource(),
                        config(schema, "holder", false, leaseDuration, retry, new LeaseObserver() {}));
                PgLease standby = PgLease.create(
                        TestDatabase.dataSource(), config(schema, "standby", true, leaseDuration, retry, looks))) {
            Elector eh = holder.elector(lease, QUIET);
            eh.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            Elector es = standby.elector(lease, QUIET);
            Awaitility.await("the standby is refused once")
                    .atMost(Duration.ofSeconds(5))
                    .until(() -> !looks.at.isEmpty());
            long from = System.nanoTime();
            Duration window = leaseDuration.multipliedBy(3);
            Thread.sleep(window.toMillis());
            long to = System.nanoTime();
            assertThat(eh.isLeader()).as("the plain holder still leads").isTrue();
            assertThat(es.isLeader()).isFalse();
            assertThat(looks.within(from, to))
                    .as(
                            "acquire statements of the fast-failover standby in %s (3 lease durations of %s, retryPeriod "
                                    + "%s) against a plain-mode holder that never registers",
                            window, leaseDuration, retry)
                    .isLessThanOrEqualTo(3 * 2 + 2);
        }
    }

    @Test
    void fastFailoverStandbysOfAPlainModeHolderNeverSpinOnEachOthersLocks() throws Exception {
        dev.pglease.Required.assume(!TestDatabase.throughPooler(), "a direct connection (fast failover's own lane)");
        String schema = TestDatabase.freshSchema();
        String lease = "plain-holder-spin";
        Duration leaseDuration = Duration.ofSeconds(1);
        Duration retry = Duration.ofMillis(100);
        int standbys = 3;
        List<Looks> looks = new ArrayList<>();
        List<PgLease> nodes = new ArrayList<>();
        try (PgLease holder = PgLease.create(
                TestDatabase.dataSource(),
                config(schema, "holder", false, leaseDuration, retry, new LeaseObserver() {}))) {
            Elector eh = holder.elector(lease, QUIET);
            eh.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            try {
                for (int i = 0; i < standbys; i++) {
                    Looks l = new Looks();
                    looks.add(l);
                    PgLease node = PgLease.create(
                            TestDatabase.dataSource(), config(schema, "standby-" + i, true, leaseDuration, retry, l));
                    nodes.add(node);
                    node.elector(lease, QUIET);
                }
                Thread.sleep(6_000);
            } finally {
                for (PgLease node : nodes) {
                    node.close();
                }
            }
            assertThat(eh.isLeader()).as("the plain holder still leads").isTrue();
            List<String> seen = new ArrayList<>();
            List<Long> shortGaps = new ArrayList<>();
            for (int i = 0; i < standbys; i++) {
                List<Long> gaps = looks.get(i).gapsBelow(retry.dividedBy(4));
                shortGaps.addAll(gaps);
                seen.add("standby-" + i + ": " + looks.get(i).at.size() + " looks, " + gaps.size()
                        + " less than 25 ms after the one before");
            }
            assertThat(shortGaps)
                    .as(
                            "gaps (ms) between a standby's consecutive looks shorter than retryPeriod/4 (%s), in 6 s with "
                                    + "nobody's session ending: %s",
                            retry.dividedBy(4), seen)
                    .isEmpty();
        }
    }
}
