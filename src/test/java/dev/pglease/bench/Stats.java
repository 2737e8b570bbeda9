package dev.pglease.bench;

import dev.pglease.testkit.Percentiles;
import java.util.Arrays;
import java.util.Collection;
import java.util.Locale;

/** Percentiles of a sample (nearest rank). */
public record Stats(int n, double min, double p50, double p90, double p99, double max, double mean) {

    public static Stats of(Collection<? extends Number> values) {
        double[] v = values.stream().mapToDouble(Number::doubleValue).sorted().toArray();
        if (v.length == 0) {
            return new Stats(0, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN);
        }
        return new Stats(
                v.length,
                v[0],
                Percentiles.ofSorted(v, 50),
                Percentiles.ofSorted(v, 90),
                Percentiles.ofSorted(v, 99),
                v[v.length - 1],
                Arrays.stream(v).average().orElse(Double.NaN));
    }

    public static String f(double v) {
        if (Double.isNaN(v)) {
            return "–";
        }
        if (Math.abs(v) >= 100) {
            return String.format(Locale.ROOT, "%.0f", v);
        }
        if (Math.abs(v) >= 10) {
            return String.format(Locale.ROOT, "%.1f", v);
        }
        return String.format(Locale.ROOT, "%.2f", v);
    }

    /** "n | p50 | p90 | p99 | max" cells. */
    public String cells() {
        return n + " | " + f(p50) + " | " + f(p90) + " | " + f(p99) + " | " + f(max);
    }
}
