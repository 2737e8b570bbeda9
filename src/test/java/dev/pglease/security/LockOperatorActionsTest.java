package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.LeaseLock;
import dev.pglease.PgLease;
import java.time.Duration;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A lock learns of an operator's force release or handoff: a {@link LeaseLock} taken for ten minutes is no longer
 * valid within one retry period and a second of the operator's action, and a fenced write made with it (check the
 * lock, then advance the fence with its token) is refused from then on.
 */
@Tag("security")
class LockOperatorActionsTest {

    private static final Duration RETRY = Duration.ofMillis(500);
    private static final Duration BOUND = RETRY.plusSeconds(1);
    private static HostileSchema h;

    @BeforeAll
    static void setUp() {
        h = HostileSchema.create();
    }

    private static PgLease node() {
        return PgLease.create(
                h.as(h.candA),
                LeaseConfig.builder()
                        .schema(h.schema)
                        .holderLabel("job-runner")
                        .leaseDuration(Duration.ofSeconds(10))
                        .renewDeadline(Duration.ofSeconds(6))
                        .retryPeriod(RETRY)
                        .build());
    }

    @Test
    void aForceReleasedLockIsInvalidWithinOneRetryPeriodAndASecondAndItsWritesAreRefused() throws Exception {
        operatorActionEndsTheLock("job-force", "force_release('job-force')");
    }

    @Test
    void aHandedOffLockIsInvalidWithinOneRetryPeriodAndASecondAndItsWritesAreRefused() throws Exception {
        operatorActionEndsTheLock("job-handoff", "handoff('job-handoff')");
    }

    private static void operatorActionEndsTheLock(String name, String operatorCall) throws Exception {
        try (PgLease pglease = node()) {
            LeaseLock lock = pglease.tryLock(name, Duration.ofMinutes(10)).orElseThrow();
            write(pglease, lock);
            String newToken = HostileSchema.query(h.operator, "SELECT " + h.schema + "." + operatorCall);
            assertThat(newToken).as("the operator's %s", operatorCall).isNotNull();
            long acted = System.nanoTime();
            Throwable notLearned = catchThrowable(() -> Awaitility.await()
                    .atMost(BOUND)
                    .pollInterval(Duration.ofMillis(20))
                    .until(() -> !lock.isValid()));
            long tookMs = (System.nanoTime() - acted) / 1_000_000;
            assertThat(notLearned)
                    .as(
                            "lock %s still valid %d ms after %s (new token %s), remaining %s",
                            name, tookMs, operatorCall, newToken, lock.remaining())
                    .isNull();
            Throwable refused = catchThrowable(() -> write(pglease, lock));
            assertThat(refused)
                    .as("a fenced write with lock %s token %d after %s", name, lock.token(), operatorCall)
                    .isInstanceOf(LeaseException.class);
        }
    }

    /** The documented way to write under a lock to a resource outside the lease row. */
    private static void write(PgLease pglease, LeaseLock lock) throws Exception {
        lock.checkValid();
        pglease.fence().inTransaction(h.as(h.candA), "report-" + lock.name(), lock, c -> {
            lock.checkValid();
            return null;
        });
    }
}
