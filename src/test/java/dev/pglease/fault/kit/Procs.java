package dev.pglease.fault.kit;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Process helpers: signals by PID (only PIDs the kit started or found under a postmaster it started). */
public final class Procs {
    private Procs() {}

    /** Sends a signal (STOP, CONT, KILL, TERM) to one PID. Returns false if the process is gone. */
    public static boolean signal(long pid, String sig) {
        try {
            Process p = new ProcessBuilder("kill", "-s", sig, Long.toString(pid))
                    .redirectErrorStream(true)
                    .start();
            p.getInputStream().readAllBytes();
            return p.waitFor() == 0;
        } catch (IOException e) {
            throw new IllegalStateException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Direct children of a PID, from /proc. */
    public static List<Long> children(long pid) {
        List<Long> out = new ArrayList<>();
        try (var dirs = Files.list(Path.of("/proc"))) {
            for (Path d : (Iterable<Path>) dirs::iterator) {
                String n = d.getFileName().toString();
                if (!n.chars().allMatch(Character::isDigit)) {
                    continue;
                }
                try {
                    String stat = Files.readString(d.resolve("stat"), StandardCharsets.UTF_8);
                    int close = stat.lastIndexOf(')');
                    String[] f = stat.substring(close + 2).split(" ");
                    if (Long.parseLong(f[1]) == pid) {
                        out.add(Long.parseLong(n));
                    }
                } catch (IOException | RuntimeException gone) {
                    // process exited while we looked
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return out;
    }

    /** Process state letter from /proc (R, S, T, Z, ...), or '?' if gone. */
    public static char state(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            return stat.charAt(stat.lastIndexOf(')') + 2);
        } catch (IOException e) {
            return '?';
        }
    }

    /** Runs a command, returns its output; throws if the exit code is not 0. */
    public static String run(Duration timeout, String... cmd) {
        Result r = tryRun(timeout, cmd);
        if (r.code != 0) {
            throw new IllegalStateException(String.join(" ", cmd) + " -> exit " + r.code + ": " + r.output);
        }
        return r.output;
    }

    /** Exit code and merged output of a command. */
    public record Result(int code, String output) {}

    public static Result tryRun(Duration timeout, String... cmd) {
        try {
            Path out = Files.createTempFile("pglease-fault-cmd", ".out");
            try {
                Process p = new ProcessBuilder(cmd)
                        .redirectErrorStream(true)
                        .redirectOutput(out.toFile())
                        .start();
                if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                    p.destroyForcibly();
                    p.waitFor(5, TimeUnit.SECONDS);
                    return new Result(-1, "timeout after " + timeout + ": " + Files.readString(out));
                }
                return new Result(p.exitValue(), Files.readString(out));
            } finally {
                Files.deleteIfExists(out);
            }
        } catch (IOException e) {
            return new Result(-2, e.toString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Result(-3, "interrupted");
        }
    }

    public static boolean isRoot() {
        return "root".equals(System.getProperty("user.name"));
    }

    public static boolean commandExists(String cmd) {
        return tryRun(Duration.ofSeconds(5), "sh", "-c", "command -v " + cmd).code == 0;
    }

    public static int freePort() {
        try (var s = new java.net.ServerSocket(0)) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
