package dev.pglease.shedlock;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseLock;
import dev.pglease.PgLease;
import dev.pglease.security.HostileSchema;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import net.javacrumbs.shedlock.core.LockConfiguration;
import net.javacrumbs.shedlock.core.SimpleLock;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A lock and an election of the same name never free each other: node A holds lock X (taken with
 * {@link PgLease#tryLock} or through the ShedLock provider with an empty prefix, the Spring default) and its own
 * elector for lease X starts as a standby. Either one of them is refused with a message naming X, or they do not
 * interfere: node B does not get lock X while A's lock is valid, and A's unlock finds its lock. And one process can
 * not hold its own lock twice.
 */
class LockIdentityTest {

    private static final Duration WATCH = Duration.ofSeconds(3);
    private static final LeaderListener NONE = new LeaderListener() {
        @Override
        public void onElected(Leadership leadership) {}

        @Override
        public void onRevoked(Leadership leadership) {}
    };
    private static HostileSchema h;

    @BeforeAll
    static void setUp() {
        h = HostileSchema.create();
    }

    private static PgLease node(String label) {
        return PgLease.create(
                h.as(h.candA),
                LeaseConfig.builder()
                        .schema(h.schema)
                        .holderLabel(label)
                        .leaseDuration(Duration.ofSeconds(4))
                        .renewDeadline(Duration.ofSeconds(3))
                        .retryPeriod(Duration.ofMillis(300))
                        .build());
    }

    @Test
    void anElectorOfALocksNameInTheSameProcessDoesNotFreeTheLock() throws Exception {
        String name = "nightly-report";
        try (PgLease a = node("node-a");
                PgLease b = node("node-b")) {
            LeaseLock lock = a.tryLock(name, Duration.ofMinutes(10)).orElseThrow();
            Elector elector = electorOrRefusal(a, name);
            if (elector == null) {
                lock.unlock(Duration.ZERO);
                return;
            }
            try (elector) {
                List<String> broken = watchForSteal(name, b, lock::isValid);
                assertThat(broken)
                        .as("node B while node A's lock %s (token %d) was valid", name, lock.token())
                        .isEmpty();
                assertThat(lock.unlock(Duration.ZERO))
                        .as("node A's unlock found its lock %s", name)
                        .isTrue();
            }
        }
    }

    @Test
    void anElectorOfAShedLockLocksNameWithTheDefaultEmptyPrefixDoesNotFreeTheLock() throws Exception {
        String name = "billing-app";
        try (PgLease a = node("node-a");
                PgLease b = node("node-b")) {
            PgLeaseLockProvider provider = new PgLeaseLockProvider(a, "");
            SimpleLock lock = provider.lock(
                            new LockConfiguration(Instant.now(), name, Duration.ofMinutes(10), Duration.ZERO))
                    .orElseThrow();
            LeaseLock held = PgLeaseLockProvider.currentLock().orElseThrow();
            // what a Spring application named billing-app starts next: its election for the lease billing-app
            Elector elector = electorOrRefusal(a, name);
            if (elector == null) {
                lock.unlock();
                return;
            }
            try (elector) {
                List<String> broken = watchForSteal(name, b, held::isValid);
                assertThat(broken)
                        .as("node B while node A's ShedLock lock %s (token %d) was valid", name, held.token())
                        .isEmpty();
                assertThat(held.extend(Duration.ofMinutes(10)))
                        .as("node A still holds its lock %s (token %d) in the" + " database", name, held.token())
                        .isTrue();
            }
            lock.unlock();
        }
    }

    /** The elector, or null when it was refused with a message naming the lock. */
    private static Elector electorOrRefusal(PgLease a, String name) {
        try {
            return a.elector(name, NONE);
        } catch (RuntimeException refused) {
            assertThat(refused.getMessage())
                    .as("the refusal of an elector for %s, a lock this process holds", name)
                    .contains(name);
            return null;
        }
    }

    @Test
    void aProcessCanNotTakeItsOwnValidLockASecondTime() {
        try (PgLease a = node("node-a")) {
            LeaseLock first = a.tryLock("single", Duration.ofMinutes(1)).orElseThrow();
            Optional<LeaseLock> second = a.tryLock("single", Duration.ofMinutes(1));
            assertThat(second)
                    .as("a second tryLock of a lock the same PgLease holds (first token %d)", first.token())
                    .isEmpty();
            assertThat(first.isValid()).isTrue();
            first.unlock(Duration.ZERO);
        }
    }

    /** For {@link #WATCH}, node B tries to take lock {@code name}; lists every time it got it while A's was valid. */
    private static List<String> watchForSteal(String name, PgLease b, java.util.function.BooleanSupplier aValid)
            throws InterruptedException {
        List<String> broken = new ArrayList<>();
        long end = System.nanoTime() + WATCH.toNanos();
        while (System.nanoTime() < end && broken.isEmpty()) {
            Optional<LeaseLock> stolen = b.tryLock(name, Duration.ofMinutes(1));
            if (stolen.isPresent()) {
                if (aValid.getAsBoolean()) {
                    broken.add(
                            "took lock " + name + " with token " + stolen.get().token());
                }
                stolen.get().unlock(Duration.ZERO);
            }
            Thread.sleep(100);
        }
        return broken;
    }
}
