package dev.pglease.compare;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/** What one lane measured. Times in ms; -1 = not measured. */
final class Results {
    /** One pause-past-lease trial. */
    record PauseTrial(
            long failoverMs, int attemptsAfterTakeover, int acceptedAfterTakeover, int rejected, int errors) {}

    /** One loss of a store member or the store's leader. */
    record StoreLoss(String what, long leaderChanges, long longestWriteGapMs, String note) {}

    final List<Long> kill = Collections.synchronizedList(new ArrayList<>());
    final List<Long> handoff = Collections.synchronizedList(new ArrayList<>());
    /** SIGTERM to the exit of the old leader's process, per handoff trial. */
    final List<Long> handoffExit = Collections.synchronizedList(new ArrayList<>());

    final List<PauseTrial> pauses = Collections.synchronizedList(new ArrayList<>());
    final List<StoreLoss> storeLoss = Collections.synchronizedList(new ArrayList<>());
    final List<String> notes = Collections.synchronizedList(new ArrayList<>());
    int killTimeouts;
    int handoffTimeouts;
    double idleCpuPct = -1;
    double steadyCpuPct = -1;
    double requestsPerSec = -1;
    long steadyWindowMs;
    long steadyLeaderChanges;
    int storeProcesses;
    int connections = -1;
    long storeRssMb;
    long candidateRssMb;
    long loadWindowMs;
    long loadLeaderChanges = -1;
    String storeDescription;
    String requestCounter;

    static long percentile(List<Long> values, double p) {
        return dev.pglease.testkit.Percentiles.of(values, p);
    }
}
