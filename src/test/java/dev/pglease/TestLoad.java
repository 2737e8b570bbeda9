package dev.pglease;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The machine's load average, printed beside every absolute figure a test reports. */
public final class TestLoad {

    private TestLoad() {}

    /** "1-min 5-min 15-min" load averages from /proc/loadavg, or "unknown" where it does not exist. */
    public static String average() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return f[0] + " " + f[1] + " " + f[2] + " (" + Runtime.getRuntime().availableProcessors() + " cores)";
        } catch (IOException | RuntimeException e) {
            return "unknown";
        }
    }
}
