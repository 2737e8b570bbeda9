package dev.pglease.compare;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/** Process, port and /proc helpers. Signals go only to PIDs this harness started (or their own children). */
final class Os {
    static final long CLK_TCK = 100;
    private static final Set<Integer> handedOut = new HashSet<>();

    private Os() {}

    static synchronized int freePort() {
        for (int i = 0; i < 50; i++) {
            int p = dev.pglease.fault.kit.Procs.freePort();
            if (handedOut.add(p)) {
                return p;
            }
        }
        throw new IllegalStateException("no free port");
    }

    static void signal(long pid, String sig) {
        run(List.of("kill", "-s", sig, Long.toString(pid)));
    }

    /** Runs a short command, returns its exit code; output goes to the harness's stderr. */
    static int run(List<String> cmd) {
        try {
            Process p = new ProcessBuilder(cmd)
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.INHERIT)
                    .start();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IllegalStateException("timed out: " + cmd);
            }
            return p.exitValue();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    static String runOutput(List<String> cmd) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            p.waitFor(60, TimeUnit.SECONDS);
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    static void sleep(long ms) {
        if (ms <= 0) {
            return;
        }
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** CPU ticks (user + system) of a process, including children it has waited for. -1 if gone. */
    static long cpuTicks(long pid) {
        String[] f = stat(pid);
        if (f == null) {
            return -1;
        }
        return Long.parseLong(f[13]) + Long.parseLong(f[14]) + Long.parseLong(f[15]) + Long.parseLong(f[16]);
    }

    /** Fields of /proc/pid/stat after the command name (index 0 = pid, 1 = comm, 2 = state, 3 = ppid ...). */
    static String[] stat(long pid) {
        try {
            String s = Files.readString(Path.of("/proc/" + pid + "/stat"));
            int close = s.lastIndexOf(')');
            String[] rest = s.substring(close + 2).trim().split(" ");
            String[] all = new String[rest.length + 2];
            all[0] = Long.toString(pid);
            all[1] = s.substring(s.indexOf('(') + 1, close);
            System.arraycopy(rest, 0, all, 2, rest.length);
            return all;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** Direct children of a process (from /proc). */
    static List<Long> children(long pid) {
        List<Long> out = new ArrayList<>();
        try (var dirs = Files.list(Path.of("/proc"))) {
            for (Path d : (Iterable<Path>) dirs::iterator) {
                String n = d.getFileName().toString();
                if (!n.chars().allMatch(Character::isDigit)) {
                    continue;
                }
                String[] f = stat(Long.parseLong(n));
                if (f != null && Long.parseLong(f[3]) == pid) {
                    out.add(Long.parseLong(n));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    /** Resident memory in kB, 0 if gone. */
    static long rssKb(long pid) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
                if (line.startsWith("VmRSS:")) {
                    return Long.parseLong(line.replaceAll("[^0-9]", ""));
                }
            }
        } catch (IOException e) {
            return 0;
        }
        return 0;
    }

    /** Established TCP connections whose local port is one of {@code ports} (server side of client links). */
    static int establishedTo(Set<Integer> ports) {
        int n = 0;
        for (String file : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
            try {
                for (String line : Files.readAllLines(Path.of(file))) {
                    String[] f = line.trim().split("\\s+");
                    if (f.length < 4 || !f[3].equals("01")) {
                        continue;
                    }
                    int local = Integer.parseInt(f[1].substring(f[1].lastIndexOf(':') + 1), 16);
                    if (ports.contains(local)) {
                        n++;
                    }
                }
            } catch (IOException | RuntimeException e) {
                // file missing on this kernel
            }
        }
        return n;
    }

    /**
     * Established TCP connections owned by the given processes whose remote port is one of {@code ports}
     * (sockets matched to processes through /proc/[pid]/fd).
     */
    static int connectionsFrom(List<Long> pids, Set<Integer> ports) {
        Set<String> inodes = new HashSet<>();
        for (long pid : pids) {
            try (var fds = Files.list(Path.of("/proc/" + pid + "/fd"))) {
                for (Path fd : (Iterable<Path>) fds::iterator) {
                    try {
                        String target = Files.readSymbolicLink(fd).toString();
                        if (target.startsWith("socket:[")) {
                            inodes.add(target.substring(8, target.length() - 1));
                        }
                    } catch (IOException ignored) {
                        // fd closed meanwhile
                    }
                }
            } catch (IOException ignored) {
                // process gone
            }
        }
        int n = 0;
        for (String file : List.of("/proc/net/tcp", "/proc/net/tcp6")) {
            try {
                for (String line : Files.readAllLines(Path.of(file))) {
                    String[] f = line.trim().split("\\s+");
                    if (f.length < 10 || !f[3].equals("01")) {
                        continue;
                    }
                    int remote = Integer.parseInt(f[2].substring(f[2].lastIndexOf(':') + 1), 16);
                    if (ports.contains(remote) && inodes.contains(f[9])) {
                        n++;
                    }
                }
            } catch (IOException | RuntimeException e) {
                // file missing on this kernel
            }
        }
        return n;
    }

    static boolean alive(long pid) {
        return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false);
    }

    static String javaBin() {
        return dev.pglease.testkit.JavaProcess.javaBinary();
    }

    /** The test class path, for child JVMs (surefire's manifest-only jar works as a class path too). */
    static String classPath() {
        return dev.pglease.testkit.JavaProcess.classpath();
    }

    static void deleteTree(Path dir) {
        if (dir == null || !Files.exists(dir)) {
            return;
        }
        try (var walk = Files.walk(dir)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException ignored) {
                    // best effort
                }
            });
        } catch (IOException ignored) {
            // best effort
        }
    }
}
