package dev.pglease.cli;

import dev.pglease.LeaseObserver;
import dev.pglease.internal.tool.JsonLines;
import dev.pglease.internal.util.Secrets;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;

/**
 * Reports every acquire and renew statement for the history checker: {@code sent} is the wall clock read before the
 * statement was sent and {@code t} the wall clock read here, so the statement ran between them whenever the process
 * was stopped.
 */
final class TraceObserver implements LeaseObserver {
    private final JsonLines out;
    private final String[] holder;
    private final long renewDeadlineMillis;
    private final boolean trace;
    private final Deadlines deadlines;

    TraceObserver(JsonLines out, String[] holder, Duration renewDeadline, boolean trace, Deadlines deadlines) {
        this.out = out;
        this.holder = holder;
        this.renewDeadlineMillis = renewDeadline.toMillis();
        this.trace = trace;
        this.deadlines = deadlines;
    }

    private void emit(String event, String lease, String result, long token, Instant sentAt) {
        if (!trace) {
            return;
        }
        Map<String, Object> e = out.event(event);
        long t = (long) e.get("t");
        e.put("lease", lease);
        e.put("holder", holder[0]);
        e.put("result", result);
        e.put("token", token);
        if (sentAt != null) {
            long sent = out.wallMillis(sentAt);
            e.put("sent", sent);
            e.put("deadline", sent + renewDeadlineMillis);
        }
        out.emit(e);
    }

    @Override
    public void acquireAttempted(String leaseName, boolean granted, long token, Duration latency, Instant sentAt) {
        if (granted) {
            deadlines.answered(leaseName, token, latency, out.wallMillis(sentAt));
        }
        emit("acquire", leaseName, granted ? "granted" : "denied", token, sentAt);
    }

    @Override
    public void renewed(String leaseName, long token, Duration latency, Instant sentAt) {
        deadlines.answered(leaseName, token, latency, out.wallMillis(sentAt));
        emit("renew", leaseName, "ok", token, sentAt);
    }

    @Override
    public void renewFailed(String leaseName, long token, boolean lost, Throwable cause) {
        emit("renew", leaseName, lost ? "lost" : "error", token, null);
    }

    @Override
    public void databaseError(String leaseName, Throwable cause) {
        if (!trace) {
            return;
        }
        Map<String, Object> e = out.event("database-error");
        e.put("lease", leaseName);
        e.put("holder", holder[0]);
        e.put("reason", Secrets.redact(String.valueOf(cause.getMessage())));
        out.emit(e);
    }
}
