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

    /** A TCP port free on 127.0.0.1 now, outside the ephemeral range when the kernel's range leaves room. */
    public static int freePort() {
        int[] range = portsOutsideTheEphemeralRange();
        if (range != null) {
            java.util.concurrent.ThreadLocalRandom random = java.util.concurrent.ThreadLocalRandom.current();
            for (int attempt = 0; attempt < 200; attempt++) {
                int port = random.nextInt(range[0], range[1]);
                try (var s = new java.net.ServerSocket()) {
                    s.setReuseAddress(false);
                    s.bind(new java.net.InetSocketAddress("127.0.0.1", port));
                    return port;
                } catch (IOException e) {
                    // taken: try another
                }
            }
        }
        try (var s = new java.net.ServerSocket(0)) {
            s.setReuseAddress(true);
            return s.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Ports the kernel never picks for an outgoing connection (below or above {@code ip_local_port_range}), or null.
     * A port from {@code new ServerSocket(0)} is an ephemeral one: between the choice and a server's bind, the
     * thousands of client connections of a build may take it as their local port, and the server can not start.
     */
    private static int[] portsOutsideTheEphemeralRange() {
        try {
            String[] bounds = Files.readString(Path.of("/proc/sys/net/ipv4/ip_local_port_range"))
                    .trim()
                    .split("\\s+");
            int low = Integer.parseInt(bounds[0]);
            int high = Integer.parseInt(bounds[1]);
            if (low > 11_000) {
                return new int[] {10_000, low};
            }
            if (high < 64_000) {
                return new int[] {high + 1, 65_000};
            }
            return null;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }
}
