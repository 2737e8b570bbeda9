package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseObserver;
import dev.pglease.PgLease;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A notification is only a wake-up, and a storm of fake ones costs little: while a login that may merely connect
 * sends notifications on the schema's channel as fast as one connection can for five seconds, the leader renews
 * about as often as when it is quiet (never because of a notification) and the standby reads the lease at most once
 * per 100 ms.
 */
@Tag("security")
class NotificationStormTest {

    private static final Duration RETRY = Duration.ofMillis(500);
    private static final Duration PERIOD = Duration.ofSeconds(5);

    /** Counts renewals and acquire statements. */
    static final class Counter implements LeaseObserver {
        final AtomicInteger renewals = new AtomicInteger();
        final AtomicInteger acquires = new AtomicInteger();

        @Override
        public void renewed(String leaseName, long token, Duration latency) {
            renewals.incrementAndGet();
        }

        @Override
        public void acquireAttempted(String leaseName, boolean granted, long token, Duration latency) {
            acquires.incrementAndGet();
        }
    }

    private static final LeaderListener NONE = new LeaderListener() {
        @Override
        public void onElected(Leadership leadership) {}

        @Override
        public void onRevoked(Leadership leadership) {}
    };

    private static LeaseConfig config(HostileSchema h, String label, Counter counter) {
        return LeaseConfig.builder()
                .schema(h.schema)
                .holderLabel(label)
                .leaseDuration(Duration.ofSeconds(10))
                .renewDeadline(Duration.ofSeconds(6))
                .retryPeriod(RETRY)
                .observer(counter)
                .build();
    }

    @Test
    void aStormOfFakeNotificationsCausesNoRenewalAndAtMostOneReadPerLeasePer100Ms() throws Exception {
        HostileSchema h = HostileSchema.create();
        String lease = "storm";
        Counter leaderCount = new Counter();
        Counter standbyCount = new Counter();
        try (PgLease a = PgLease.create(h.as(h.candA), config(h, "leader", leaderCount));
                PgLease b = PgLease.create(h.as(h.candB), config(h, "standby", standbyCount));
                Elector ea = a.elector(lease, NONE)) {
            Leadership l = ea.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            try (Elector eb = b.elector(lease, NONE)) {
                Thread.sleep(RETRY.toMillis());
                int r0 = leaderCount.renewals.get();
                Thread.sleep(PERIOD.toMillis());
                int quietRenewals = leaderCount.renewals.get() - r0;

                int r1 = leaderCount.renewals.get();
                int a1 = standbyCount.acquires.get();
                int sent = storm(h, lease);
                int stormRenewals = leaderCount.renewals.get() - r1;
                int stormAcquires = standbyCount.acquires.get() - a1;

                String counts = String.format(
                        "%d fake notifications in %d s: leader renewed %d times (%d when quiet),"
                                + " standby sent %d acquires",
                        sent, PERIOD.toSeconds(), stormRenewals, quietRenewals, stormAcquires);
                assertThat(sent).as("notifications sent").isGreaterThan(1_000);
                assertThat(stormRenewals).as(counts).isLessThanOrEqualTo(2 * quietRenewals + 2);
                assertThat(stormAcquires).as(counts).isLessThanOrEqualTo((int) (PERIOD.toMillis() / 100));
                assertThat(l.isValid()).as("the leader still leads").isTrue();
            }
        }
    }

    /** Fake releases and takeovers of the lease, as fast as one connection sends them, for {@link #PERIOD}. */
    private static int storm(HostileSchema h, String lease) throws Exception {
        int sent = 0;
        try (Connection c = h.as(h.nobody).getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT count(pg_notify(?, CASE WHEN i % 2 = 0"
                        + " THEN format('{\"name\":\"%s\",\"holder\":null,\"token\":%s,\"kind\":\"released\"}', ?::text, i)"
                        + " ELSE format('{\"name\":\"%s\",\"holder\":\"x%s\",\"token\":%s,\"kind\":\"taken_over\"}', ?::text, i, i)"
                        + " END)) FROM generate_series(?, ? + 199) i")) {
            long end = System.nanoTime() + PERIOD.toNanos();
            while (System.nanoTime() < end && sent < 200_000) {
                ps.setString(1, h.schema + ".leases");
                ps.setString(2, lease);
                ps.setString(3, lease);
                ps.setInt(4, sent);
                ps.setInt(5, sent);
                ps.execute();
                sent += 200;
            }
        }
        return sent;
    }
}
