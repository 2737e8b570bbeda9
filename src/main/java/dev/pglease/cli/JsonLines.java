package dev.pglease.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.PrintStream;
import java.util.LinkedHashMap;
import java.util.Map;

/** Writes one JSON object per line, whole lines only, from any thread. */
public final class JsonLines {

    private static final ObjectMapper MAPPER = new ObjectMapper();
    private final PrintStream out;
    private final long clockSkewMillis;

    public JsonLines(PrintStream out, long clockSkewMillis) {
        this.out = out;
        this.clockSkewMillis = clockSkewMillis;
    }

    /** Wall-clock time in epoch milliseconds as this process reports it (with any configured skew). */
    public long now() {
        return System.currentTimeMillis() + clockSkewMillis;
    }

    /** Starts an event with its name and time. */
    public Map<String, Object> event(String name) {
        Map<String, Object> e = new LinkedHashMap<>();
        e.put("event", name);
        e.put("t", now());
        return e;
    }

    public void emit(Map<String, Object> event) {
        String line;
        try {
            line = MAPPER.writeValueAsString(event);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        synchronized (out) {
            out.println(line);
            out.flush();
        }
    }

    public static String toJson(Object value) {
        try {
            return MAPPER.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
