package dev.pglease.ha;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The machine a measurement ran on, and its load, in absolute figures. */
final class Machine {
    private Machine() {}

    /** The 1, 5 and 15 minute load averages from /proc/loadavg, e.g. "3.10 / 2.05 / 1.50 (1/5/15 min)". */
    static String load() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return f[0] + " / " + f[1] + " / " + f[2] + " (1/5/15 min)";
        } catch (IOException e) {
            return "unknown (" + e.getMessage() + ")";
        }
    }

    static String describe() {
        long memGiB = Runtime.getRuntime().maxMemory() > 0 ? totalMemoryGiB() : -1;
        return Runtime.getRuntime().availableProcessors() + " cores, " + memGiB + " GiB RAM, "
                + System.getProperty("os.name") + " " + System.getProperty("os.version");
    }

    private static long totalMemoryGiB() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemTotal:")) {
                    return Math.round(Long.parseLong(line.replaceAll("\\D", "")) / 1024.0 / 1024.0);
                }
            }
        } catch (IOException | NumberFormatException ignored) {
            // fall through
        }
        return -1;
    }
}
