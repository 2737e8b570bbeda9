package dev.pglease.compare;

import java.util.List;
import java.util.Locale;

/** Plain SVG charts, written as text. */
final class Svg {
    private static final String[] COLORS = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
    private static final int LEFT = 190;
    private static final int RIGHT = 40;
    private static final int WIDTH = 760;
    private static final int ROW = 44;

    private Svg() {}

    record Row(String label, List<Long> values) {}

    record Bar(String label, double value, String text) {}

    /** One row of dots per backend, with the median (thick tick) and p99 (thin tick). */
    static String strip(String title, String unit, List<Row> rows) {
        double max = 1;
        for (Row r : rows) {
            for (long v : r.values()) {
                max = Math.max(max, v);
            }
        }
        max = niceCeil(max);
        int height = 70 + rows.size() * ROW + 40;
        StringBuilder s = header(title, height);
        axis(s, max, unit, 60 + rows.size() * ROW, height);
        int y = 60;
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            String col = COLORS[i % COLORS.length];
            int cy = y + ROW / 2;
            text(s, LEFT - 10, cy + 4, r.label(), "end", 13);
            if (r.values().isEmpty()) {
                text(s, LEFT + 6, cy + 4, "no data", "start", 12);
            }
            java.util.Random jitter = new java.util.Random(i);
            for (long v : r.values()) {
                double x = LEFT + v / max * (WIDTH - LEFT - RIGHT);
                double jy = cy + (jitter.nextDouble() - 0.5) * (ROW * 0.5);
                s.append(String.format(
                        Locale.ROOT,
                        "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\" fill-opacity=\"0.55\"/>\n",
                        x,
                        jy,
                        col));
            }
            if (!r.values().isEmpty()) {
                double p50 = LEFT + Results.percentile(r.values(), 50) / max * (WIDTH - LEFT - RIGHT);
                double p99 = LEFT + Results.percentile(r.values(), 99) / max * (WIDTH - LEFT - RIGHT);
                s.append(String.format(
                        Locale.ROOT,
                        "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" "
                                + "stroke=\"black\" stroke-width=\"3\"/>\n",
                        p50,
                        p50,
                        cy - 16,
                        cy + 16));
                s.append(String.format(
                        Locale.ROOT,
                        "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" "
                                + "stroke=\"black\" stroke-width=\"1\" stroke-dasharray=\"3,2\"/>\n",
                        p99,
                        p99,
                        cy - 16,
                        cy + 16));
            }
            y += ROW;
        }
        text(s, LEFT, height - 6, "dots: trials; thick tick: median; dashed tick: p99", "start", 11);
        return s.append("</svg>\n").toString();
    }

    /** Horizontal bars. */
    static String bars(String title, String unit, List<Bar> bars) {
        double max = 0;
        for (Bar b : bars) {
            max = Math.max(max, b.value());
        }
        max = niceCeil(Math.max(max, 1e-9));
        int height = 70 + bars.size() * ROW + 30;
        StringBuilder s = header(title, height);
        axis(s, max, unit, 60 + bars.size() * ROW, height);
        int y = 60;
        for (int i = 0; i < bars.size(); i++) {
            Bar b = bars.get(i);
            int cy = y + ROW / 2;
            text(s, LEFT - 10, cy + 4, b.label(), "end", 13);
            double w = Math.max(0, b.value()) / max * (WIDTH - LEFT - RIGHT);
            s.append(String.format(
                    Locale.ROOT,
                    "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n",
                    LEFT,
                    cy - 12,
                    w,
                    24,
                    COLORS[i % COLORS.length]));
            text(s, (int) (LEFT + w + 6), cy + 4, b.text(), "start", 12);
            y += ROW;
        }
        return s.append("</svg>\n").toString();
    }

    private static StringBuilder header(String title, int height) {
        StringBuilder s = new StringBuilder();
        s.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"")
                .append(WIDTH)
                .append("\" height=\"")
                .append(height)
                .append("\" viewBox=\"0 0 ")
                .append(WIDTH)
                .append(' ')
                .append(height)
                .append("\" font-family=\"sans-serif\">\n");
        s.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        text(s, WIDTH / 2, 24, title, "middle", 16);
        return s;
    }

    private static void axis(StringBuilder s, double max, String unit, int bottom, int height) {
        int ticks = 5;
        for (int k = 0; k <= ticks; k++) {
            double v = max * k / ticks;
            double x = LEFT + (WIDTH - LEFT - RIGHT) * k / (double) ticks;
            s.append(String.format(
                    Locale.ROOT,
                    "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"50\" y2=\"%d\" stroke=\"#ddd\"/>\n",
                    x,
                    x,
                    bottom));
            text(s, (int) x, bottom + 16, fmt(v), "middle", 11);
        }
        text(s, LEFT + (WIDTH - LEFT - RIGHT) / 2, bottom + 32, unit, "middle", 12);
    }

    private static void text(StringBuilder s, int x, int y, String t, String anchor, int size) {
        s.append("<text x=\"")
                .append(x)
                .append("\" y=\"")
                .append(y)
                .append("\" text-anchor=\"")
                .append(anchor)
                .append("\" font-size=\"")
                .append(size)
                .append("\">")
                .append(esc(t))
                .append("</text>\n");
    }

    static String esc(String t) {
        return t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }

    static String fmt(double v) {
        if (v == Math.rint(v)) {
            return Long.toString((long) v);
        }
        return String.format(Locale.ROOT, v < 10 ? "%.2f" : "%.1f", v);
    }

    static double niceCeil(double v) {
        double p = Math.pow(10, Math.floor(Math.log10(v)));
        for (double m : new double[] {1, 2, 2.5, 5, 10}) {
            if (m * p >= v) {
                return m * p;
            }
        }
        return 10 * p;
    }
}
