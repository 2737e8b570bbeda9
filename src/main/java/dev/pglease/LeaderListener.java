package dev.pglease;

/**
 * Told when this process gains and loses a lease. Callbacks for one lease run in order on a dedicated thread,
 * never on the election thread, so a slow or throwing callback can not delay renewals.
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
