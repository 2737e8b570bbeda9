package dev.pglease;

/**
 * Told when this member of a {@link LeaseGroup} gains and loses a shard. Calls for one shard come one at a time, in
 * order, never on the election thread; calls for different shards may come at the same time from different threads.
 *
 * <p>Each shard is an ordinary lease: the {@link Leadership} carries its fencing token, to pass with every protected
 * write ({@link PgLease#inFencedTransaction}, {@link PgLease#fenceTransaction}, the forward fence). Do not use the
 * callbacks as a safety mechanism: check {@link Leadership#isValid()}, or fence, before each protected action.
 */
public interface GroupListener {

    /** This member now owns {@code shard} (0-based) with {@link Leadership#token()}. */
    void onAssigned(int shard, Leadership leadership);

    /**
     * This member no longer owns {@code shard}. Either the assignment moved the shard to another member (a planned
     * move: the grant is still valid during this call, and is renewed until it returns, so work in flight may
     * finish; stop starting new work, wait for what runs, then return: the shard is released only after this returns,
     * and the next owner takes it at once), or the grant ended (deadline passed, lease lost, group closed:
     * {@link Leadership#isValid()} is already {@code false}).
     */
    void onRevoked(int shard, Leadership leadership);
}
