package dev.pglease.fault;

/**
 * One injected fault, on the kit's clock.
 *
 * @param index        sequence number of the fault in the run
 * @param kind         fault kind (see {@link FaultKind})
 * @param target       what was hit ("n2", "postgres", "proxy:n1", ...)
 * @param startMs      injection time
 * @param endMs        heal time (equal to start for instantaneous faults such as kill -9), or -1 if never healed
 * @param leaderLoss   whether the fault took the current leader away long enough to expect a failover
 * @param leaderHolder holder that led when the fault was injected (null if none or unknown)
 * @param leaderToken  its token (null if none)
 */
public record FaultRecord(
        long index,
        FaultKind kind,
        String target,
        long startMs,
        long endMs,
        boolean leaderLoss,
        String leaderHolder,
        Long leaderToken) {
    public FaultRecord healedAt(long end) {
        return new FaultRecord(index, kind, target, startMs, end, leaderLoss, leaderHolder, leaderToken);
    }

    public String render(long t0) {
        return String.format(
                "fault#%d %s on %s %s..%s%s",
                index,
                kind.label(),
                target,
                Op.rel(startMs, t0),
                endMs < 0 ? "open" : Op.rel(endMs, t0),
                leaderLoss ? " leader=" + leaderHolder + "/" + leaderToken : "");
    }
}
