package dev.pglease.internal.group;

import dev.pglease.Ticker;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;

/**
 * When one member's thread next reads its group, and what wakes it sooner. Its monitor ({@link #lock()}) is the
 * member's one lock: it guards this schedule and the state the member's parts share with other threads (the shards'
 * slots, the grants still to measure, the member watched and the suspects of fast failover). It is never held while
 * calling the engine: engine threads take it (briefly) to wake the member, so holding it while waiting for the engine
 * could deadlock.
 */
final class MemberSchedule {

    private final Object lock = new Object();
    private final Ticker ticker;
    private final long minReadNanos;

    private boolean wake;
    private boolean lookAgain = true;
    private long nextRead;
    private long lastRead;
    private boolean readOnce;
    private volatile boolean closing;

    /** @param minReadNanos at most one read of the group per this interval (the notice interval) */
    MemberSchedule(Ticker ticker, long minReadNanos) {
        this.ticker = ticker;
        this.minReadNanos = minReadNanos;
    }

    /** The member's lock. */
    Object lock() {
        return lock;
    }

    boolean closing() {
        return closing;
    }

    /** Marks the member closing and wakes its thread; false when it was closing already. */
    boolean close() {
        synchronized (lock) {
            if (closing) {
                return false;
            }
            closing = true;
            lock.notifyAll();
            return true;
        }
    }

    /** Something may have changed in the group (a notification named it): read it again soon. */
    void lookAgain() {
        synchronized (lock) {
            lookAgain = true;
            wake = true;
            lock.notifyAll();
        }
    }

    /** Wakes the member's thread: something is to be done before the next read. */
    void wake() {
        synchronized (lock) {
            wake = true;
            lock.notifyAll();
        }
    }

    /** On the member's thread: whether to read the group at {@code now}; a read too soon after the last is put off. */
    boolean due(long now) {
        synchronized (lock) {
            boolean due = lookAgain || now - nextRead >= 0;
            if (due && readOnce && now - lastRead < minReadNanos) {
                nextRead = lastRead + minReadNanos;
                due = false;
            }
            return due;
        }
    }

    /** A read of the group starts at {@code start} (ticker): it answers every request to look again so far. */
    void reading(long start) {
        synchronized (lock) {
            lookAgain = false;
            lastRead = start;
            readOnce = true;
        }
    }

    /** When the next read is due (ticker). */
    long nextRead() {
        synchronized (lock) {
            return nextRead;
        }
    }

    /** The next read is due at {@code at} (ticker). */
    void readAt(long at) {
        synchronized (lock) {
            nextRead = at;
        }
    }

    /** The next read is due {@code nanos} from now. */
    void readIn(long nanos) {
        synchronized (lock) {
            nextRead = ticker.read() + nanos;
        }
    }

    /** The next read is due at {@code at} (ticker) at the latest. */
    void readBy(long at) {
        synchronized (lock) {
            if (at - nextRead < 0) {
                nextRead = at;
            }
        }
    }

    /**
     * On the member's thread: waits until the next read or {@code renewDue} (ticker), unless the member was woken, is
     * closing, was asked to look again, or {@code idle} (asked under the lock) says there is more to do.
     *
     * @return false when the thread was interrupted
     */
    boolean await(LongSupplier renewDue, BooleanSupplier idle) {
        synchronized (lock) {
            long until = nextRead;
            long renew = renewDue.getAsLong();
            if (renew - until < 0) {
                until = renew;
            }
            long wait = until - ticker.read();
            if (!wake && !closing && !lookAgain && idle.getAsBoolean() && wait > 0) {
                try {
                    TimeUnit.NANOSECONDS.timedWait(lock, wait);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return false;
                }
            }
            wake = false;
            return true;
        }
    }
}
