package dev.pglease.testkit;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** The test suite's one percentile: nearest rank on the sorted values. */
public final class Percentiles {
    private Percentiles() {}

    /**
     * The nearest-rank {@code p}-th percentile (0 = minimum, 100 = maximum) of {@code values}, which need not be
     * sorted; -1 when there are none.
     *
     * @throws IllegalArgumentException if {@code p} is outside 0..100
     */
    public static long of(List<Long> values, double p) {
        checkRange(p);
        if (values.isEmpty()) {
            return -1;
        }
        List<Long> s = new ArrayList<>(values);
        Collections.sort(s);
        return s.get(rank(p, s.size()));
    }

    /** The nearest-rank {@code p}-th percentile of {@code sorted} (ascending, not empty). */
    public static double ofSorted(double[] sorted, double p) {
        checkRange(p);
        return sorted[rank(p, sorted.length)];
    }

    private static void checkRange(double p) {
        if (!(p >= 0 && p <= 100)) {
            throw new IllegalArgumentException("percentile must be between 0 and 100, got " + p);
        }
    }

    private static int rank(double p, int size) {
        int idx = (int) Math.ceil(p / 100.0 * size) - 1;
        return Math.max(0, Math.min(size - 1, idx));
    }
}
