package dev.pglease.fault.kit;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/** A skewed wall clock for a node JVM through libfaketime (CLOCK_REALTIME only; the monotonic clock is real). */
public final class FakeTime {
  private static final Path[] CANDIDATES = {
      Path.of("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
      Path.of("/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"),
      Path.of("/usr/lib/faketime/libfaketime.so.1"),
  };

  private FakeTime() {
  }

  public static Path library() {
    for (Path p : CANDIDATES) {
      if (Files.isReadable(p)) {
        return p;
      }
    }
    return null;
  }

  public static boolean available() {
    return library() != null;
  }

  /** Environment that runs a process with its wall clock {@code skewMs} ahead (negative: behind). */
  public static Map<String, String> env(long skewMs) {
    Path lib = library();
    if (lib == null) {
      throw new IllegalStateException("libfaketime not installed (apt-get install faketime)");
    }
    String offset = String.format(java.util.Locale.ROOT, "%+.3f", skewMs / 1000.0);
    return Map.of("LD_PRELOAD", lib.toString(), "FAKETIME", offset, "FAKETIME_DONT_FAKE_MONOTONIC", "1",
        "FAKETIME_NO_CACHE", "1", "DONT_FAKE_MONOTONIC", "1");
  }
}
