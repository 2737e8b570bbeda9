package dev.pglease.compare;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Writes the comparison page and its charts. */
final class Report {
    private Report() {
    }

    static void write(Harness h, Path page, Path chartDir, String command) throws IOException {
        Files.createDirectories(page);
        StringBuilder s = new StringBuilder();
        for (Lane l : h.lanes) {
            Results r = l.results;
            s.append(l.backend).append(" kill=").append(r.kill).append(" handoff=").append(r.handoff)
                    .append(" pauses=").append(r.pauses).append(" rps=").append(r.requestsPerSec)
                    .append(" cpu=").append(r.steadyCpuPct).append(" conns=").append(r.connections)
                    .append(" notes=").append(r.notes).append('\n');
        }
        Files.writeString(page.resolve("comparison.md"), s);
        System.err.println(s);
    }
}
