package dev.pglease.testkit;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * CPU starvation as the comparison applies it: busy loops at nice 0 on every core, and the processes under test
 * reniced (every thread: Linux nice values are per thread). Close to stop the loops.
 */
public final class CpuStarvation implements AutoCloseable {

    /** Nice value the starved processes run at (the busy loops run at 0). */
    public static final int STARVED_NICE = 19;

    private final List<Process> loops = new ArrayList<>();

    private CpuStarvation() {}

    /** Starts {@code count} busy loops ({@code sh -c 'while :; do :; done'}). */
    public static CpuStarvation busyLoops(int count) {
        CpuStarvation s = new CpuStarvation();
        try {
            for (int i = 0; i < count; i++) {
                s.loops.add(new ProcessBuilder("sh", "-c", "while :; do :; done").start());
            }
        } catch (IOException e) {
            s.close();
            throw new UncheckedIOException(e);
        }
        return s;
    }

    /** Sets the nice value of every current thread of process {@code pid} (threads started later inherit it). */
    public static void renice(long pid, int nice) {
        List<String> cmd = new ArrayList<>(List.of("renice", "-n", Integer.toString(nice), "-p"));
        try (var tasks = Files.list(Path.of("/proc/" + pid + "/task"))) {
            for (Path t : (Iterable<Path>) tasks::iterator) {
                cmd.add(t.getFileName().toString());
            }
        } catch (IOException e) {
            return; // the process is gone
        }
        try {
            new ProcessBuilder(cmd)
                    .redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                    .start()
                    .waitFor(10, TimeUnit.SECONDS);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() {
        for (Process p : loops) {
            p.destroyForcibly();
        }
        loops.clear();
    }
}
