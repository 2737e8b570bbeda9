package dev.pglease.compare;

import java.util.List;
import java.util.Set;

/** A coordination store under test, as seen by the harness. */
interface Store extends AutoCloseable {
    /** What a candidate passes as {@code store=}. */
    String connectString();

    /** Store server PIDs now (for CPU and memory). */
    List<Long> pids();

    /** CPU ticks used by the store so far (all its processes, including exited backends that were reaped). */
    long cpuTicks();

    /** Client requests served so far, as the store counts them ({@link #requestCounterName()}). */
    long requests();

    String requestCounterName();

    /** Ports clients connect to (for counting client connections). */
    Set<Integer> clientPorts();

    /** Client connections now, as the store sees them. */
    int clientConnections();

    String describe();

    @Override
    void close();
}
