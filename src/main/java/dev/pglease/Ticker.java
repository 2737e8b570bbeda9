package dev.pglease;

/**
 * A monotonic clock in nanoseconds, used for every local deadline. The default is {@link System#nanoTime()};
 * tests inject a settable one. Never a wall clock: pglease does not compare client time with database time.
 */
@FunctionalInterface
public interface Ticker {

    /** The system's monotonic clock. */
    Ticker SYSTEM = System::nanoTime;

    /** Current reading in nanoseconds; only differences between readings are meaningful. */
    long read();
}
