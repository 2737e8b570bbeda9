package dev.pglease.shedlock;

import dev.pglease.FencingContext;
import dev.pglease.LeaseException;
import dev.pglease.LeaseLock;
import dev.pglease.PgLease;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;
import net.javacrumbs.shedlock.core.ExtensibleLockProvider;
import net.javacrumbs.shedlock.core.LockConfiguration;
import net.javacrumbs.shedlock.core.LockProvider;
import net.javacrumbs.shedlock.core.SimpleLock;
import net.javacrumbs.shedlock.support.LockException;

/**
 * A ShedLock {@link LockProvider} backed by pglease leases: {@code @SchedulerLock} tasks keep working unchanged
 * and gain a fencing token. Each lock is a {@link LeaseLock} taken for {@code lockAtMostFor}; unlock keeps it
 * until {@code lockAtLeastFor} has passed; {@link SimpleLock#extend} is supported (also through ShedLock's
 * {@code LockExtender} and {@code KeepAliveLockProvider}). Time is the database's clock only, so nodes with skewed clocks can not steal a lock early.
 *
 * <p>While the task runs, its lock is the grant of the {@link FencingContext} (ShedLock runs the task on the thread
 * that took the lock): the task reads it there and passes it to the fencing API, so that a task that was paused
 * past its lock can no longer write:
 * <pre>{@code
 * @Scheduled(fixedRate = 60_000)
 * @SchedulerLock(name = "nightly-report", lockAtMostFor = "10m")
 * void report() throws SQLException {
 *     LeaseLock lock = FencingContext.current(LeaseLock.class).orElseThrow();
 *     pglease.inFencedTransaction(lock, conn -> writeReport(conn));
 * }
 * }</pre>
 *
 * <p>Lock names share the lease namespace of the pglease schema; give them a prefix (see
 * {@link #PgLeaseLockProvider(PgLease, String)}) if electors of the same schema could use the same names.
 */
public final class PgLeaseLockProvider implements ExtensibleLockProvider {

    private final PgLease pglease;
    private final String namePrefix;

    public PgLeaseLockProvider(PgLease pglease) {
        this(pglease, "");
    }

    /** @param namePrefix prepended to every ShedLock lock name to form the lease name (may be empty) */
    public PgLeaseLockProvider(PgLease pglease, String namePrefix) {
        this.pglease = Objects.requireNonNull(pglease, "pglease must not be null");
        this.namePrefix = Objects.requireNonNull(namePrefix, "namePrefix must not be null");
    }

    /**
     * The innermost lock the current thread runs under: {@code FencingContext.current(LeaseLock.class)}.
     *
     * @deprecated use {@link FencingContext#current(Class) FencingContext.current(LeaseLock.class)}, or
     *     {@link FencingContext#current()} for whatever grant the code runs under
     */
    @Deprecated
    public static Optional<LeaseLock> currentLock() {
        return FencingContext.current(LeaseLock.class);
    }

    /**
     * The fencing token of {@link #currentLock()}.
     *
     * @throws IllegalStateException when this thread holds no lock
     * @deprecated use {@link FencingContext#currentToken()}
     */
    @Deprecated
    public static long currentToken() {
        return FencingContext.current(LeaseLock.class)
                .orElseThrow(
                        () -> new IllegalStateException("this thread holds no lock taken through PgLeaseLockProvider"))
                .token();
    }

    @Override
    public Optional<SimpleLock> lock(LockConfiguration configuration) {
        Optional<LeaseLock> lock;
        try {
            lock = pglease.tryLock(namePrefix + configuration.getName(), configuration.getLockAtMostFor());
        } catch (LeaseException e) {
            throw new LockException(
                    "pglease could not take lock " + configuration.getName() + ": " + e.getMessage(), e);
        }
        if (lock.isEmpty()) {
            return Optional.empty();
        }
        return Optional.of(
                new PgLeaseSimpleLock(lock.get(), configuration.getLockAtLeastFor(), FencingContext.enter(lock.get())));
    }

    /**
     * One lock as ShedLock sees it, bound to the {@link FencingContext} of the thread that took it until unlocked.
     * Extending returns a new instance for the same lease lock and binding.
     */
    private static final class PgLeaseSimpleLock implements SimpleLock {
        private final LeaseLock lock;
        private final Duration lockAtLeastFor;
        private final FencingContext.Scope binding;
        private boolean done;

        PgLeaseSimpleLock(LeaseLock lock, Duration lockAtLeastFor, FencingContext.Scope binding) {
            this.lock = lock;
            this.lockAtLeastFor = lockAtLeastFor;
            this.binding = binding;
        }

        @Override
        public synchronized void unlock() {
            if (done) {
                throw new IllegalStateException("lock " + lock.leaseName() + " was already unlocked or extended");
            }
            done = true;
            binding.close();
            try {
                lock.unlock(lockAtLeastFor);
            } catch (LeaseException e) {
                throw new LockException("pglease could not unlock " + lock.leaseName() + ": " + e.getMessage(), e);
            }
        }

        @Override
        public synchronized Optional<SimpleLock> extend(Duration lockAtMostFor, Duration lockAtLeastFor) {
            if (done) {
                throw new IllegalStateException("lock " + lock.leaseName() + " was already unlocked or extended");
            }
            boolean extended;
            try {
                extended = lock.extend(lockAtMostFor);
            } catch (LeaseException e) {
                throw new LockException("pglease could not extend " + lock.leaseName() + ": " + e.getMessage(), e);
            }
            if (!extended) {
                return Optional.empty();
            }
            done = true;
            return Optional.of(new PgLeaseSimpleLock(lock, lockAtLeastFor, binding));
        }

        @Override
        public String toString() {
            return "PgLeaseSimpleLock{" + lock + "}";
        }
    }
}
