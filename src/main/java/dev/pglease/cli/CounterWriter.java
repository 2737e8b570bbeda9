package dev.pglease.cli;

import dev.pglease.Elector;
import dev.pglease.Leadership;
import dev.pglease.LeaseException;
import dev.pglease.PgLease;
import dev.pglease.internal.tool.JsonLines;
import dev.pglease.internal.util.Secrets;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.sql.DataSource;

/**
 * One writer thread of the node command's workload: while this process leads, it increments the {@link FencedCounter}
 * in a fenced transaction every interval and reports each attempt as a {@code write} event (and an {@code open}
 * event when the write holds its transaction open). The fault switches {@code ignoreDeadline} and {@code unfenced}
 * are negative controls: writes past the local deadline, or without the fence.
 */
final class CounterWriter implements Runnable {

    /** What to write and how: the node command's {@code --work-interval}, {@code --write-hold} and fault switches. */
    record Settings(
            String schema, String lease, Duration hold, Duration interval, boolean ignoreDeadline, boolean unfenced) {}

    private final JsonLines out;
    private final PgLease pglease;
    private final Elector elector;
    private final DataSource ds;
    private final Deadlines deadlines;
    private final Settings settings;
    private final String lease;
    private final AtomicBoolean stopping;

    CounterWriter(
            JsonLines out,
            PgLease pglease,
            Elector elector,
            DataSource ds,
            Deadlines deadlines,
            Settings settings,
            AtomicBoolean stopping) {
        this.out = out;
        this.pglease = pglease;
        this.elector = elector;
        this.ds = ds;
        this.deadlines = deadlines;
        this.settings = settings;
        this.lease = settings.lease();
        this.stopping = stopping;
    }

    @Override
    public void run() {
        Leadership last = null;
        while (!stopping.get()) {
            Optional<Leadership> current = elector.leadership();
            if (current.isPresent()) {
                last = current.get();
            }
            Leadership candidate = current.orElse(settings.ignoreDeadline() ? last : null);
            // the unfenced writer still honours its local deadline: only the fence is missing
            Leadership l = candidate != null && settings.unfenced() && !candidate.isValid() ? null : candidate;
            if (l != null) {
                Map<String, Object> e = out.event("write");
                long startTick = deadlines.tick();
                e.put("lease", lease);
                e.put("holder", l.holder());
                e.put("token", l.token());
                e.put("start", e.get("t"));
                FencedCounter counter = new FencedCounter(settings.schema(), lease, settings.hold(), () -> {
                    Map<String, Object> open = out.event("open");
                    open.put("lease", lease);
                    open.put("holder", l.holder());
                    open.put("token", l.token());
                    open.put("start", e.get("start"));
                    open.put("until", (long) open.get("t") + settings.hold().toMillis());
                    out.emit(open);
                });
                // the deadline this process holds for the token, set by its last successful acquire or renew and
                // read from its own record: it is earlier than "start" when the write begins too late
                Long deadline = deadlines.wallDeadline(lease, l.token(), (long) e.get("t"), startTick);
                if (deadline != null) {
                    e.put("deadline", deadline);
                }
                try {
                    long value;
                    if (settings.ignoreDeadline() || settings.unfenced()) {
                        value = counter.incrementWithoutDeadline(ds, l, settings.unfenced());
                    } else {
                        value = pglease.inFencedTransaction(l, c -> counter.increment(c, l));
                    }
                    e.put("result", "accepted");
                    e.put("value", value);
                } catch (LeaseException ex) {
                    e.put("result", "rejected");
                    e.put("reason", ex.reason().name());
                } catch (SQLException | RuntimeException ex) {
                    e.put("result", "error");
                    e.put("reason", Secrets.redact(String.valueOf(ex.getMessage())));
                }
                e.put("t", out.wallMillis());
                out.emit(e);
            }
            try {
                TimeUnit.NANOSECONDS.sleep(settings.interval().toNanos());
            } catch (InterruptedException ex) {
                return;
            }
        }
    }
}
