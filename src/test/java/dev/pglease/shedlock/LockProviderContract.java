package dev.pglease.shedlock;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import net.javacrumbs.shedlock.core.ClockProvider;
import net.javacrumbs.shedlock.core.LockConfiguration;
import net.javacrumbs.shedlock.core.LockProvider;
import net.javacrumbs.shedlock.core.SimpleLock;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The behaviour every ShedLock {@link LockProvider} must have, against a real database: run by the pglease provider
 * and, as a control that the contract itself is right, by ShedLock's own JDBC provider. Each call to
 * {@link #newNode()} is another application node with its own provider.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class LockProviderContract {

    private static final AtomicInteger NAMES = new AtomicInteger();

    /** A provider as another node of the application would have it. Closed by {@link #closeNodes()}. */
    protected abstract LockProvider newNode();

    /** Releases what {@link #newNode()} created. */
    @AfterEach
    protected abstract void closeNodes();

    static String uniqueName(String what) {
        return what + "-" + NAMES.incrementAndGet() + "-" + System.nanoTime() % 100_000;
    }

    static LockConfiguration config(String name, Duration atMost, Duration atLeast) {
        return new LockConfiguration(ClockProvider.now(), name, atMost, atLeast);
    }

    static LockConfiguration config(String name, Duration atMost) {
        return config(name, atMost, Duration.ZERO);
    }

    /** Polls until the node gets the lock; returns the lock and the milliseconds waited since {@code startNanos}. */
    static SimpleLock awaitLock(LockProvider node, LockConfiguration config, long startNanos, Duration timeout)
            throws InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() - end < 0) {
            Optional<SimpleLock> lock = node.lock(config);
            if (lock.isPresent()) {
                return lock.get();
            }
            Thread.sleep(20);
        }
        throw new AssertionError("no lock on " + config.getName() + " within " + timeout);
    }

    static long millisSince(long startNanos) {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - startNanos);
    }

    @Test
    void aFreeLockIsGrantedAndCanBeTakenAgainAfterUnlock() {
        LockProvider node = newNode();
        String name = uniqueName("free");
        Optional<SimpleLock> first = node.lock(config(name, Duration.ofSeconds(30)));
        assertThat(first).as("a free lock is granted").isPresent();
        first.get().unlock();
        Optional<SimpleLock> second = node.lock(config(name, Duration.ofSeconds(30)));
        assertThat(second).as("granted again after unlock").isPresent();
        second.get().unlock();
    }

    @Test
    void thereIsNoSecondHolderWhileLocked() {
        LockProvider a = newNode();
        LockProvider b = newNode();
        String name = uniqueName("held");
        SimpleLock lock = a.lock(config(name, Duration.ofSeconds(30))).orElseThrow();
        assertThat(b.lock(config(name, Duration.ofSeconds(30))))
                .as("another node while locked")
                .isEmpty();
        assertThat(a.lock(config(name, Duration.ofSeconds(30))))
                .as("the same node again while locked")
                .isEmpty();
        assertThat(b.lock(config(uniqueName("other"), Duration.ofSeconds(30))))
                .as("a different lock name is independent")
                .isPresent()
                .get()
                .satisfies(SimpleLock::unlock);
        lock.unlock();
        b.lock(config(name, Duration.ofSeconds(30))).orElseThrow().unlock();
    }

    @Test
    void aLockThatIsNeverUnlockedExpiresAfterLockAtMostFor() throws InterruptedException {
        LockProvider a = newNode();
        LockProvider b = newNode();
        String name = uniqueName("at-most");
        long start = System.nanoTime();
        SimpleLock abandoned = a.lock(config(name, Duration.ofMillis(400))).orElseThrow();
        assertThat(b.lock(config(name, Duration.ofSeconds(30))))
                .as("still held")
                .isEmpty();
        SimpleLock taken = awaitLock(b, config(name, Duration.ofSeconds(30)), start, Duration.ofSeconds(5));
        assertThat(millisSince(start)).as("taken over only after lockAtMostFor").isGreaterThanOrEqualTo(380);
        taken.unlock();
        abandoned.unlock(); // ends the task's lock on this thread (ShedLock always does); B's is gone already
    }

    @Test
    void unlockKeepsTheLockUntilLockAtLeastFor() throws InterruptedException {
        LockProvider a = newNode();
        LockProvider b = newNode();
        String name = uniqueName("at-least");
        long start = System.nanoTime();
        a.lock(config(name, Duration.ofSeconds(20), Duration.ofMillis(500)))
                .orElseThrow()
                .unlock();
        assertThat(b.lock(config(name, Duration.ofSeconds(30))))
                .as("kept after an early unlock")
                .isEmpty();
        SimpleLock taken = awaitLock(b, config(name, Duration.ofSeconds(30)), start, Duration.ofSeconds(5));
        assertThat(millisSince(start))
                .as("free after lockAtLeastFor, long before lockAtMostFor")
                .isBetween(480L, 10_000L);
        taken.unlock();
    }

    @Test
    void unlockAfterLockAtLeastForFreesTheLockAtOnce() throws InterruptedException {
        LockProvider a = newNode();
        LockProvider b = newNode();
        String name = uniqueName("at-least-passed");
        SimpleLock lock = a.lock(config(name, Duration.ofSeconds(20), Duration.ofMillis(100)))
                .orElseThrow();
        Thread.sleep(250);
        lock.unlock();
        assertThat(b.lock(config(name, Duration.ofSeconds(30))))
                .as("free right after unlock")
                .isPresent()
                .get()
                .satisfies(SimpleLock::unlock);
    }

    @Test
    void extendKeepsTheLockBeyondItsFirstLockAtMostFor() throws InterruptedException {
        LockProvider a = newNode();
        LockProvider b = newNode();
        String name = uniqueName("extend");
        SimpleLock lock = a.lock(config(name, Duration.ofSeconds(1))).orElseThrow();
        Optional<SimpleLock> extended = lock.extend(Duration.ofSeconds(20), Duration.ZERO);
        assertThat(extended).as("a live lock can be extended").isPresent();
        Thread.sleep(1200);
        assertThat(b.lock(config(name, Duration.ofSeconds(30))))
                .as("still held after the first lockAtMostFor")
                .isEmpty();
        extended.get().unlock();
        assertThat(b.lock(config(name, Duration.ofSeconds(30))))
                .as("free after unlocking the extended lock")
                .isPresent()
                .get()
                .satisfies(SimpleLock::unlock);
    }

    @Test
    void anExpiredLockCanNotBeExtended() throws InterruptedException {
        LockProvider a = newNode();
        String name = uniqueName("extend-late");
        SimpleLock lock = a.lock(config(name, Duration.ofMillis(200))).orElseThrow();
        Thread.sleep(450);
        assertThat(lock.extend(Duration.ofSeconds(20), Duration.ZERO))
                .as("extension after expiry")
                .isEmpty();
        try {
            lock.unlock(); // ends the task's lock on this thread, as ShedLock does when the task returns
        } catch (IllegalStateException invalidSinceTheExtension) {
            // ShedLock's own providers end a lock at a failed extension already
        }
    }

    @Test
    void concurrentCallersGetTheLockExactlyOnce() throws Exception {
        int nodes = 6;
        List<LockProvider> providers = new ArrayList<>();
        for (int i = 0; i < nodes; i++) {
            providers.add(newNode());
        }
        ExecutorService pool = Executors.newFixedThreadPool(nodes);
        try {
            for (int round = 0; round < 4; round++) {
                String name = uniqueName("race");
                CountDownLatch go = new CountDownLatch(1);
                List<Future<Optional<SimpleLock>>> results = new ArrayList<>();
                for (LockProvider p : providers) {
                    results.add(pool.submit(() -> {
                        go.await();
                        return p.lock(config(name, Duration.ofSeconds(30)));
                    }));
                }
                go.countDown();
                List<SimpleLock> granted = new ArrayList<>();
                for (Future<Optional<SimpleLock>> f : results) {
                    f.get(20, TimeUnit.SECONDS).ifPresent(granted::add);
                }
                assertThat(granted).as("winners of round " + round).hasSize(1);
                granted.get(0).unlock();
            }
        } finally {
            pool.shutdownNow();
        }
    }
}
