package dev.pglease.internal.group;

import java.util.function.Consumer;

/**
 * What a member of a lease group needs from fast failover: to wait, on a connection of its own, for another member's
 * advisory lock (held by that member's lease session), which is freed the moment that session ends.
 */
interface MemberWatch {

    /**
     * Waits under {@code key} for the lock of {@code lockName}: while it is held, until it is freed, then runs {@code
     * onDone} with true; while nobody holds it, for a retry period, then runs {@code onDone} with false.
     */
    void watch(String key, String lockName, Consumer<Boolean> onDone);

    /** Ends the wait of {@code key}, if any. */
    void cancel(String key);
}
