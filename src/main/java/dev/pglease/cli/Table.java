package dev.pglease.cli;

import dev.pglease.internal.tool.Visible;
import java.io.PrintWriter;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;

/**
 * A plain text table with left-aligned columns (cells shown with {@link Visible#text}), and the value formats the
 * commands share.
 */
final class Table {

    private static final DateTimeFormatter TIME =
            DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);

    private final String[] headers;
    private final List<String[]> rows = new ArrayList<>();

    Table(String... headers) {
        this.headers = headers;
    }

    Table row(Object... cells) {
        String[] r = new String[headers.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = i < cells.length && cells[i] != null ? Visible.text(String.valueOf(cells[i])) : "-";
        }
        rows.add(r);
        return this;
    }

    boolean isEmpty() {
        return rows.isEmpty();
    }

    void print(PrintWriter out) {
        int[] widths = new int[headers.length];
        for (int i = 0; i < headers.length; i++) {
            widths[i] = headers[i].length();
            for (String[] r : rows) {
                widths[i] = Math.max(widths[i], r[i].length());
            }
        }
        line(out, headers, widths);
        for (String[] r : rows) {
            line(out, r, widths);
        }
        out.flush();
    }

    private static void line(PrintWriter out, String[] cells, int[] widths) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < cells.length; i++) {
            b.append(cells[i]);
            if (i < cells.length - 1) {
                b.append(" ".repeat(widths[i] - cells[i].length() + 2));
            }
        }
        out.println(b.toString().stripTrailing());
    }

    /**
     * A token as term.counter ({@code 2.17}: the 17th grant of its lease on timeline 2): the schema stores
     * {@code (term - 1) * 2^32 + counter}.
     */
    static String term(long token) {
        return ((token >>> 32) + 1) + "." + (token & 0xFFFFFFFFL);
    }

    /** {@code 1.834s}, {@code 250ms}, {@code 3m12s}. */
    static String millis(Long ms) {
        if (ms == null) {
            return null;
        }
        long v = Math.abs(ms);
        String sign = ms < 0 ? "-" : "";
        if (v < 1_000) {
            return sign + v + "ms";
        }
        if (v < 60_000) {
            return sign + String.format(java.util.Locale.ROOT, "%.3fs", v / 1000.0);
        }
        if (v < 3_600_000) {
            return sign + (v / 60_000) + "m" + ((v % 60_000) / 1000) + "s";
        }
        if (v < 86_400_000) {
            return sign + (v / 3_600_000) + "h" + ((v % 3_600_000) / 60_000) + "m";
        }
        return sign + (v / 86_400_000) + "d" + ((v % 86_400_000) / 3_600_000) + "h";
    }

    static String time(OffsetDateTime t) {
        return t == null ? null : TIME.format(t.toInstant());
    }

    static String time(Instant t) {
        return t == null ? null : TIME.format(t);
    }

    static String iso(OffsetDateTime t) {
        return t == null ? null : t.toInstant().toString();
    }

    static String iso(Instant t) {
        return t == null ? null : t.toString();
    }
}
