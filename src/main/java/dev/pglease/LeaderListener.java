package dev.pglease;

/**
 * Told when this process gains and loses a lease. Callbacks for one lease run in order, one at a time, on a thread
 * of their own while they run: never on the election thread and never behind another lease's callbacks, so a slow,
 * blocking or throwing callback delays neither renewals nor the callbacks of the process's other leases (a leader
 * may do its work inside {@code onElected} for as long as it leads).
 * Do not use the callback order as a safety mechanism: check {@link Leadership#isValid()} (or use the fencing
 * API) before every protected action.
 */
public interface LeaderListener {

    /** This process now holds the lease with {@link Leadership#token()}. */
    void onElected(Leadership leadership);

    /**
     * This process no longer holds the lease (deadline passed, lease lost, released or closed).
     * {@link Leadership#isValid()} is already {@code false} when this is called.
     */
    void onRevoked(Leadership leadership);
}
