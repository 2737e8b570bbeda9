package dev.pglease.demo;

import java.util.List;

/**
 * The outcome of a demo run.
 *
 * @param chargesMade       charges the provider accepted
 * @param duplicateCharges  accepted charges for a subscription period that was already charged (must be 0)
 * @param staleRejected     requests the provider refused because their fencing token was stale
 * @param staleWouldDuplicate of those, how many were for a period already charged (a duplicate prevented)
 * @param requestsSent      charge requests the nodes sent
 * @param failovers         each failover the demo caused, in order
 * @param problems          what did not go as the scenario expects (empty when it did)
 */
public record DemoSummary(
        long chargesMade,
        long duplicateCharges,
        long staleRejected,
        long staleWouldDuplicate,
        long requestsSent,
        List<Failover> failovers,
        List<String> problems) {

    /**
     * One failover.
     *
     * @param cause      how the leader was taken out ("paused (SIGSTOP)" or "killed (kill -9)")
     * @param from       node that led
     * @param fromToken  its token
     * @param to         node elected next (null if none was within the time limit)
     * @param toToken    the new token
     * @param millis     from the fault to the new leader's election, in milliseconds
     */
    public record Failover(String cause, String from, long fromToken, String to, long toToken, long millis) {}

    /** Whether the run showed what it should: no duplicate charge, a stale request rejected, both failovers. */
    public boolean ok() {
        return problems.isEmpty();
    }
}
