package dev.pglease.security;

import static dev.pglease.testkit.Lane.PG13;
import static dev.pglease.testkit.Lane.PGBOUNCER_TRANSACTION;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import dev.pglease.testkit.NotInLane;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * Fast failover whatever the roles' session defaults: with every setting docs/security.md recommends for application
 * logins ({@code lock_timeout}, {@code idle_in_transaction_session_timeout}) and the other common hardening ones
 * ({@code statement_timeout}, {@code idle_session_timeout}), set on both the holder's and the standby's login and
 * short enough to bite many times over, a healthy holder keeps its lease, and a standby takes over within a second
 * of the holder's crash.
 */
@Timeout(value = 90)
@Tag("security")
@NotInLane(
        value = PGBOUNCER_TRANSACTION,
        because =
                "fast failover needs session-level advisory locks held on one server session, which transaction pooling does not give: pglease refuses the mode there at start (UNSUPPORTED_POOLING)")
class FastFailoverRoleSettingsTest {

    private static final List<String> SETTINGS = List.of(
            "lock_timeout = '300ms'",
            "statement_timeout = '400ms'",
            "idle_in_transaction_session_timeout = '300ms'",
            "idle_session_timeout = '500ms'");

    private static LeaseConfig config(HostileSchema h, String label) {
        return LeaseConfig.builder()
                .schema(h.schema)
                .holderLabel(label)
                .fastFailover(true)
                .leaseDuration(Duration.ofSeconds(10))
                .renewDeadline(Duration.ofSeconds(6))
                .retryPeriod(Duration.ofSeconds(2))
                .build();
    }

    /** Records elections and revocations. */
    static final class Events implements LeaderListener {
        final CompletableFuture<Long> electedAt = new CompletableFuture<>();
        final List<String> revocations = new CopyOnWriteArrayList<>();

        @Override
        public void onElected(Leadership l) {
            electedAt.complete(System.nanoTime());
        }

        @Override
        public void onRevoked(Leadership l) {
            revocations.add("token " + l.token() + ": " + l.revocationReason());
        }
    }

    @Test
    @NotInLane(value = PG13, because = "sets idle_session_timeout, which PostgreSQL 14 introduced")
    void withEveryRecommendedRoleSettingAHealthyHolderKeepsItsLeaseAndACrashIsTakenOverWithinASecond()
            throws Exception {
        HostileSchema h = HostileSchema.create();
        String holder = h.login("strict_holder", h.roles.candidate());
        String standby = h.login("strict_standby", h.roles.candidate());
        for (String login : List.of(holder, standby)) {
            for (String setting : SETTINGS) {
                HostileSchema.superuser("ALTER ROLE " + login + " SET " + setting);
            }
        }
        String lease = "ff-strict-roles";
        Events holderEvents = new Events();
        Events standbyEvents = new Events();
        try (PgLease a = PgLease.create(h.as(holder), config(h, "holder"));
                PgLease b = PgLease.create(h.as(standby), config(h, "standby"));
                Elector ea = a.elector(lease, holderEvents)) {
            Leadership l = ea.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            try (Elector eb = b.elector(lease, standbyEvents)) {
                Awaitility.await("the standby waits on the holder's session lock")
                        .atMost(Duration.ofSeconds(10))
                        .until(() -> "t"
                                .equals(HostileSchema.query(
                                        null,
                                        "SELECT count(*) > 0 FROM pg_locks k JOIN pg_stat_activity a ON a.pid = k.pid"
                                                + " WHERE k.locktype = 'advisory' AND NOT k.granted AND a.usename = '"
                                                + standby + "'")));
                Throwable tookOver = catchThrowable(() -> standbyEvents.electedAt.get(4, TimeUnit.SECONDS));
                assertThat(tookOver)
                        .as(
                                "a standby took over from a healthy holder (holder revocations: %s)",
                                holderEvents.revocations)
                        .isNotNull();
                assertThat(holderEvents.revocations)
                        .as("revocations of the healthy holder")
                        .isEmpty();
                assertThat(l.isValid()).isTrue();
                assertThat(HostileSchema.query(
                                null,
                                "SELECT count(*) FROM pg_locks k JOIN pg_stat_activity a ON a.pid = k.pid"
                                        + " WHERE k.locktype = 'advisory' AND NOT k.granted AND a.usename = '"
                                        + standby + "'"))
                        .as("the standby still waits on the holder's session lock after its role's lock and "
                                + "statement timeouts passed many times")
                        .isEqualTo("1");

                // the holder's process dies (kill -9): its sessions end and it never comes back
                HostileSchema.superuser("ALTER ROLE " + holder + " NOLOGIN");
                long killed = System.nanoTime();
                HostileSchema.superuser(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '" + holder + "'");
                Throwable none = catchThrowable(() -> standbyEvents.electedAt.get(12, TimeUnit.SECONDS));
                HostileSchema.superuser("ALTER ROLE " + holder + " LOGIN"); // so that its close does not wait
                assertThat(none).as("no takeover within 12 s").isNull();
                long tookMs = (standbyEvents.electedAt.get() - killed) / 1_000_000;
                assertThat(tookMs)
                        .as("ms from the holder's crash to the standby's election")
                        .isLessThan(1_000);
                // here the holder's process lives on: it learns within a second although its own watch of its lease
                // session went down with that session
                Awaitility.await("the holder cut off from the database stops leading")
                        .atMost(Duration.ofSeconds(1))
                        .until(() -> !l.isValid());
            }
        }
    }
}
