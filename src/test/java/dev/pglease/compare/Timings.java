package dev.pglease.compare;

/** The lease timings every backend gets, translated to its own knobs (see {@link Harness#settings}). */
record Timings(long leaseMs, long renewMs, long retryMs, long workMs) {
    static Timings standard() {
        return new Timings(4000, 3000, 1000, 50);
    }
}
