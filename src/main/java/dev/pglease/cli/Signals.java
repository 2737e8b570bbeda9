package dev.pglease.cli;

import java.util.ArrayList;
import java.util.List;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * SIGTERM and SIGINT as a request to stop: the command finishes its work and exits 0 instead of being ended by the
 * JVM. {@link #restore} puts the previous handlers back (a command may run inside another program, as in tests).
 */
final class Signals {

    private final List<Signal> signals = new ArrayList<>();
    private final List<SignalHandler> previous = new ArrayList<>();

    private Signals() {}

    /** Runs {@code stop} on SIGTERM or SIGINT from now on (nothing where the JVM does not allow it). */
    static Signals install(Runnable stop) {
        Signals s = new Signals();
        for (String name : List.of("TERM", "INT")) {
            try {
                Signal signal = new Signal(name);
                SignalHandler old = Signal.handle(signal, ignored -> stop.run());
                s.signals.add(signal);
                s.previous.add(old);
            } catch (IllegalArgumentException | UnsupportedOperationException e) {
                // the JVM keeps this signal (e.g. -Xrs): it ends the process as usual
            }
        }
        return s;
    }

    /** The handlers from before {@link #install}. */
    void restore() {
        for (int i = 0; i < signals.size(); i++) {
            try {
                Signal.handle(signals.get(i), previous.get(i));
            } catch (IllegalArgumentException | UnsupportedOperationException e) {
                // nothing more to restore
            }
        }
    }
}
