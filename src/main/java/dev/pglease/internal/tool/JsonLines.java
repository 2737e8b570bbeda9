package dev.pglease.internal.tool;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintStream;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Writes one JSON object per line, whole lines only, from any thread; characters a terminal would act on, or that
 * hide or reorder text, are written as JSON escapes ({@link Visible#json}).
 */
public final class JsonLines {

    private static final ObjectMapper MAPPER = new ObjectMapper();
    private final PrintStream out;
    private final long clockSkewMillis;

    public JsonLines(PrintStream out, long clockSkewMillis) {
        this.out = out;
        this.clockSkewMillis = clockSkewMillis;
    }

    /**
     * Wall-clock time in epoch milliseconds, only for the {@code t} fields of reported events (with any configured
     * skew). pglease itself never reads the wall clock: lease times come from the database's clock_timestamp().
     */
    public long wallMillis() {
        return System.currentTimeMillis() + clockSkewMillis;
    }

    /** {@code at}, a reading of the system's wall clock, as the {@code t} fields report times (with the skew). */
    public long wallMillis(Instant at) {
        return at.toEpochMilli() + clockSkewMillis;
    }

    /** Starts an event with its name and time. */
    public Map<String, Object> event(String name) {
        Map<String, Object> e = new LinkedHashMap<>();
        e.put("event", name);
        e.put("t", wallMillis());
        return e;
    }

    public void emit(Map<String, Object> event) {
        String line;
        try {
            line = Visible.json(MAPPER.writeValueAsString(event));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        synchronized (out) {
            out.println(line);
            out.flush();
        }
    }

    /**
     * A listener that reports {@code elected} (with the local deadline), {@code revoked} and {@code released} events
     * for {@code lease}: the node command's contract, shared with the demo's chargers.
     */
    public dev.pglease.LeaderListener leaderListener(String lease) {
        return new dev.pglease.LeaderListener() {
            @Override
            public void onElected(dev.pglease.Leadership l) {
                Map<String, Object> e = event("elected");
                e.put("lease", lease);
                e.put("holder", l.holder());
                e.put("token", l.token());
                e.put("deadline", wallMillis() + l.remaining().toMillis());
                emit(e);
            }

            @Override
            public void onRevoked(dev.pglease.Leadership l) {
                String reason = l.revocationReason();
                boolean released = "released".equals(reason) || "closed".equals(reason);
                Map<String, Object> e = event(released ? "released" : "revoked");
                e.put("lease", lease);
                e.put("holder", l.holder());
                e.put("token", l.token());
                e.put("reason", reason);
                emit(e);
            }
        };
    }

    /** {@code value} as JSON text, escaped as {@link Visible#json} does. */
    public static String toJson(Object value) {
        try {
            return Visible.json(MAPPER.writeValueAsString(value));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
