package dev.pglease.fault;

/**
 * One operation of a recorded history: an invocation and its completion, as a node (or the kit's own monitor)
 * reported it. Node times are epoch milliseconds corrected for any wall-clock skew the kit injected, so that all
 * of them share the kit's clock. Database times ({@code dbFrom}, {@code dbTo}) are epoch microseconds on the
 * database clock and only ever compared with each other.
 *
 * @param index      position in the history (order of recording)
 * @param node       logical node name ("n1", "monitor", ...)
 * @param holder     holder id of the process incarnation that performed the operation (null if unknown)
 * @param kind       what was attempted
 * @param outcome    ok, fail (definitely had no effect) or unknown (may or may not have taken effect)
 * @param token      the fencing token involved (granted, renewed, written with, or read), null if none
 * @param invokeMs   when the operation was sent / started
 * @param completeMs when its outcome was known
 * @param deadlineMs the writer's local deadline at invocation (epoch ms), null if not applicable
 * @param value      counter value after an accepted write, null otherwise
 * @param dbFrom     for reads: acquired_at of the lease row (DB clock, epoch micros), else null
 * @param dbTo       for reads: expires_at of the lease row (DB clock, epoch micros), else null
 * @param detail     free text shown in reports (e.g. a revoke reason or an error)
 * @param lease      the lease the operation is about (a shard's lease in a group run), null when the run has one
 */
public record Op(
        long index,
        String node,
        String holder,
        Kind kind,
        Outcome outcome,
        Long token,
        long invokeMs,
        long completeMs,
        Long deadlineMs,
        Long value,
        Long dbFrom,
        Long dbTo,
        String detail,
        String lease) {

    /** An operation on the run's only lease. */
    public Op(
            long index,
            String node,
            String holder,
            Kind kind,
            Outcome outcome,
            Long token,
            long invokeMs,
            long completeMs,
            Long deadlineMs,
            Long value,
            Long dbFrom,
            Long dbTo,
            String detail) {
        this(
                index,
                node,
                holder,
                kind,
                outcome,
                token,
                invokeMs,
                completeMs,
                deadlineMs,
                value,
                dbFrom,
                dbTo,
                detail,
                null);
    }

    /** Kinds of operation. */
    public enum Kind {
        /** The conditional acquire statement. */
        ACQUIRE,
        /** The renew statement. */
        RENEW,
        /** A release (graceful shutdown). */
        RELEASE,
        /** A protected write through the fence. */
        WRITE,
        /** A read of the lease row by the kit's monitor (or a node's final state). */
        READ,
        /** The node reported being elected (derived from a granted acquire). */
        ELECTED,
        /** The node reported stepping down. */
        REVOKED,
        /** Anything else a node printed, kept for context. */
        NOTE
    }

    /** Outcome of an operation, in the Jepsen sense. */
    public enum Outcome {
        OK,
        FAIL,
        UNKNOWN
    }

    public boolean ok() {
        return outcome == Outcome.OK;
    }

    Op withIndex(long newIndex) {
        return new Op(
                newIndex,
                node,
                holder,
                kind,
                outcome,
                token,
                invokeMs,
                completeMs,
                deadlineMs,
                value,
                dbFrom,
                dbTo,
                detail,
                lease);
    }

    /** One report line, times relative to {@code t0}. */
    public String render(long t0) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(
                "#%-5d %9s..%-9s %-8s %-7s %-7s",
                index,
                rel(invokeMs, t0),
                rel(completeMs, t0),
                node,
                kind.name().toLowerCase(),
                outcome.name().toLowerCase()));
        if (lease != null) {
            sb.append(" lease=").append(lease);
        }
        if (token != null) {
            sb.append(" token=").append(token);
        }
        if (holder != null) {
            sb.append(" holder=").append(holder);
        }
        if (deadlineMs != null) {
            sb.append(" deadline=").append(rel(deadlineMs, t0));
        }
        if (value != null) {
            sb.append(" value=").append(value);
        }
        if (dbFrom != null || dbTo != null) {
            sb.append(" db=[")
                    .append(dbFrom == null ? "?" : DbTime.format(dbFrom))
                    .append(", ")
                    .append(dbTo == null ? "?" : DbTime.format(dbTo))
                    .append(']');
        }
        if (detail != null && !detail.isEmpty()) {
            sb.append(" (").append(detail).append(')');
        }
        return sb.toString();
    }

    static String rel(long ms, long t0) {
        return String.format("%+.3fs", (ms - t0) / 1000.0);
    }
}
