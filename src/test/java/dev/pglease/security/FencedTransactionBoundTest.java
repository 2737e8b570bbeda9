package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseObserver;
import dev.pglease.PgLease;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A fenced transaction does not keep the lease row locked past its holder's deadline, whatever the role's
 * defaults: the holder (whose role has {@code transaction_timeout = '60s'} on PostgreSQL 17+, none before) runs a
 * fenced transaction of 20 short statements 300 ms apart; its process stops renewing just before (its election
 * thread stalls), so its deadline passes in the middle of the transaction. The successor is granted within the
 * usual bound (lease duration + retry period + a second), not when the transaction chooses to end.
 */
@Tag("security")
class FencedTransactionBoundTest {

    private static final Duration LEASE = Duration.ofSeconds(3);
    private static final Duration RETRY = Duration.ofMillis(500);

    /** Stalls the election thread at its next renewal until released. */
    static final class Pause implements LeaseObserver {
        volatile boolean armed;
        final CountDownLatch paused = new CountDownLatch(1);
        final CountDownLatch resume = new CountDownLatch(1);
        volatile long pausedAt;

        @Override
        public void renewed(String leaseName, long token, Duration latency) {
            if (armed) {
                armed = false;
                pausedAt = System.nanoTime();
                paused.countDown();
                try {
                    resume.await(20, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    @Test
    void aFencedTransactionOfManyShortStatementsDoesNotHoldTheSuccessorPastTheUsualBound() throws Exception {
        HostileSchema h = HostileSchema.create();
        String holder = h.login("slow", h.roles.candidate());
        int version = Integer.parseInt(HostileSchema.query(null, "SHOW server_version_num"));
        if (version >= 170000) {
            HostileSchema.superuser("ALTER ROLE " + holder + " SET transaction_timeout = '60s'");
        }
        String lease = "bounded";
        Pause pause = new Pause();
        CompletableFuture<Long> successorElected = new CompletableFuture<>();
        try (PgLease a = PgLease.create(
                        h.as(holder),
                        LeaseConfig.builder()
                                .schema(h.schema)
                                .holderLabel("holder")
                                .leaseDuration(LEASE)
                                .renewDeadline(Duration.ofSeconds(2))
                                .retryPeriod(RETRY)
                                .observer(pause)
                                .build());
                PgLease b = PgLease.create(
                        h.as(h.candB),
                        LeaseConfig.builder()
                                .schema(h.schema)
                                .holderLabel("successor")
                                .leaseDuration(LEASE)
                                .renewDeadline(Duration.ofSeconds(2))
                                .retryPeriod(RETRY)
                                .build());
                Elector ea = a.elector(lease, listener(null))) {
            Leadership l = ea.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            try (Elector eb = b.elector(lease, listener(successorElected))) {
                pause.armed = true;
                assertThat(pause.paused.await(5, TimeUnit.SECONDS))
                        .as("the holder's renewals stopped")
                        .isTrue();
                CompletableFuture<Object> work = CompletableFuture.supplyAsync(() -> {
                    try {
                        return a.inFencedTransaction(l, c -> {
                            try (Statement s = c.createStatement()) {
                                for (int i = 0; i < 20; i++) {
                                    s.execute("SELECT 1");
                                    try {
                                        Thread.sleep(300);
                                    } catch (InterruptedException e) {
                                        Thread.currentThread().interrupt();
                                        return "interrupted";
                                    }
                                }
                            }
                            return "committed";
                        });
                    } catch (Exception e) {
                        return e.toString();
                    }
                });
                long elected = successorElected.get(15, TimeUnit.SECONDS);
                long afterMs = (elected - pause.pausedAt) / 1_000_000;
                long boundMs = LEASE.plus(RETRY).plusSeconds(1).toMillis();
                pause.resume.countDown();
                Object outcome = work.get(15, TimeUnit.SECONDS);
                assertThat(afterMs)
                        .as(
                                "successor granted %d ms after the holder's last renewal (bound %d ms; "
                                        + "PostgreSQL %d; the fenced transaction ended: %s)",
                                afterMs, boundMs, version, outcome)
                        .isLessThanOrEqualTo(boundMs);
            } finally {
                pause.resume.countDown();
            }
        }
    }

    private static LeaderListener listener(CompletableFuture<Long> elected) {
        return new LeaderListener() {
            @Override
            public void onElected(Leadership l) {
                if (elected != null) {
                    elected.complete(System.nanoTime());
                }
            }

            @Override
            public void onRevoked(Leadership l) {}
        };
    }
}
