package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseObserver;
import dev.pglease.PgLease;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.awaitility.Awaitility;

/**
 * Candidate A holding a lease and renewing it, the target of an attack: it records every revocation and counts its
 * renewals, so a test can wait until the victim has renewed after an attack and then check it still leads.
 */
final class Victim implements AutoCloseable {

    final HostileSchema h;
    final String lease;
    final PgLease pglease;
    final Elector elector;
    final Leadership leadership;
    final List<String> revocations = new CopyOnWriteArrayList<>();
    final AtomicInteger renewals = new AtomicInteger();

    private Victim(HostileSchema h, String lease, boolean fastFailover) throws InterruptedException {
        this.h = h;
        this.lease = lease;
        LeaseConfig config = LeaseConfig.builder()
                .schema(h.schema)
                .holderLabel("victim")
                .fastFailover(fastFailover)
                .leaseDuration(Duration.ofSeconds(30))
                .renewDeadline(Duration.ofSeconds(20))
                .retryPeriod(Duration.ofMillis(300))
                .observer(new LeaseObserver() {
                    @Override
                    public void renewed(String leaseName, long token, Duration latency) {
                        renewals.incrementAndGet();
                    }
                })
                .build();
        this.pglease = PgLease.create(h.as(h.candA), config);
        this.elector = pglease.elector(lease, new LeaderListener() {
            @Override
            public void onElected(Leadership l) {}

            @Override
            public void onRevoked(Leadership l) {
                revocations.add("token " + l.token() + ": " + l.revocationReason());
            }
        });
        this.leadership = elector.awaitLeadership(Duration.ofSeconds(15))
                .orElseThrow(() -> new AssertionError("the victim was not elected for " + lease));
    }

    static Victim start(HostileSchema h, String lease, boolean fastFailover) throws InterruptedException {
        return new Victim(h, lease, fastFailover);
    }

    /** Waits until the victim has renewed {@code count} more times (so a lost lease would have been noticed). */
    void awaitRenewals(int count) {
        int target = renewals.get() + count;
        Awaitility.await("victim renews " + count + " times")
                .atMost(Duration.ofSeconds(10))
                .pollInterval(Duration.ofMillis(20))
                .until(() -> renewals.get() >= target || !revocations.isEmpty());
    }

    /** The victim's row still names it with its token, and it still leads, never revoked. */
    void assertIntact(String after) throws SQLException {
        HostileSchema.Row row = h.row(lease);
        assertThat(row).as("lease row of %s after %s", lease, after).isNotNull();
        assertThat(row.holder())
                .as("holder of %s after %s (events: %s)", lease, after, h.events(lease))
                .isEqualTo(leadership.holder());
        assertThat(row.token())
                .as("token of %s after %s (events: %s)", lease, after, h.events(lease))
                .isEqualTo(leadership.token());
        assertThat(revocations)
                .as("revocations of the victim's leadership of %s after %s", lease, after)
                .isEmpty();
        assertThat(elector.isLeader())
                .as("victim still leads %s after %s", lease, after)
                .isTrue();
        assertThat(leadership.isValid())
                .as("victim's leadership of %s valid after %s", lease, after)
                .isTrue();
    }

    /** Whether the victim is still the holder with its token and was never revoked. */
    boolean intact() throws SQLException {
        HostileSchema.Row row = h.row(lease);
        return row != null
                && leadership.holder().equals(row.holder())
                && row.token() == leadership.token()
                && revocations.isEmpty()
                && leadership.isValid();
    }

    @Override
    public void close() {
        elector.close();
        pglease.close();
    }
}
