package dev.pglease.ha;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.pglease.fault.LostGrants;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Every failover of the matrix, one fresh cluster each: pg_auto_failover in synchronous and asynchronous mode, primary
 * killed, paused past the manager's timeout, and switched over by the manager. Writes the measured table into
 * docs/ha.md (between its table markers), with the machine and its load. Run with {@code ./mvnw -Pha test}.
 */
@Tag("ha-full")
class HaMatrixTest {
  private static final Path PAGE = Path.of("docs/ha.md");
  private static final String BEGIN = "<!-- ha-table:begin -->";
  private static final String END = "<!-- ha-table:end -->";
  private static final Path COMPARISON = Path.of("docs/comparison.md");
  private static final String COMPARISON_BEGIN = "<!-- ha-failover:begin -->";
  private static final String COMPARISON_END = "<!-- ha-failover:end -->";

  private static void replaceBlock(Path page, String begin, String end, String block) throws IOException {
    String text = Files.readString(page, StandardCharsets.UTF_8);
    int b = text.indexOf(begin);
    int e = text.indexOf(end);
    assertThat(b).as("markers " + begin + " in " + page).isNotNegative();
    assertThat(e).as("markers " + end + " in " + page).isGreaterThan(b);
    String inner = block.startsWith(begin) ? block : begin + "\n" + block + end;
    Files.writeString(page, text.substring(0, b) + inner + text.substring(e + end.length()), StandardCharsets.UTF_8);
  }

  /** The comparison page's row: the PostgreSQL store's failover including the HA manager's detection. */
  private static String comparisonRows(List<HaRun.Result> results) {
    StringBuilder s = new StringBuilder("**Store failover including detection.** The rows above promote the standby "
        + "by hand right after the kill. Through a real HA manager (pg_auto_failover, detection shortened to 3 s, "
        + "demote timeout 5 s; see [ha.md](ha.md), `./mvnw -Pha test`, " + Machine.load() + " load at the end), the "
        + "primary killed, time from the kill to a pglease leader again:\n\n"
        + "| Backend | Store failover including detection | Fault → leader again | Leader changes | Tokens granted "
        + "twice |\n|---|---|---|---|---|\n");
    for (HaRun.Result r : results) {
      if (r.fault() == HaRun.Fault.KILL) {
        s.append(String.format(java.util.Locale.ROOT,
            "| pglease via pg_auto_failover (%s standby) | primary killed (kill -9), manager detects and promotes | "
                + "%.1f s | %d | %d |\n", r.synchronous() ? "synchronous" : "asynchronous", r.endToEndMs() / 1000.0,
            r.leaderChanges(), r.repeatedTokens()));
      }
    }
    s.append("| etcd + jetcd election, ZooKeeper + Curator | the store's own leader killed: the members elect a new "
        + "one by themselves | see the table above (no manager needed) | see above | - |\n\n");
    return s.toString();
  }

  @Test
  void everyManagerModeAndFault() throws IOException {
    assumeTrue(AutoFailoverCluster.available(), "pg_autoctl (postgresql-15-auto-failover) is not installed here");
    String loadBefore = Machine.load();
    long started = System.nanoTime();
    List<HaRun.Result> results = new ArrayList<>();
    for (boolean sync : new boolean[] {true, false}) {
      for (HaRun.Fault fault : HaRun.Fault.values()) {
        HaRun.Result r = HaRun.autoFailover(sync, fault);
        System.out.println(r.row());
        results.add(r);
      }
    }
    StringBuilder table = new StringBuilder(BEGIN).append('\n');
    table.append("Measured ").append(java.time.LocalDate.now()).append(" on ").append(Machine.describe())
        .append("; load before: ").append(loadBefore).append(", after: ").append(Machine.load())
        .append("; whole matrix ").append((System.nanoTime() - started) / 1_000_000_000L).append(" s.\n\n");
    table.append(HaRun.Result.header()).append('\n');
    for (HaRun.Result r : results) {
      table.append(r.row()).append('\n');
    }
    table.append(END);
    replaceBlock(PAGE, BEGIN, END, table.toString());
    replaceBlock(COMPARISON, COMPARISON_BEGIN, COMPARISON_END, comparisonRows(results));
    System.out.println(table);
    for (HaRun.Result r : results) {
      assertThat(r.endToEndMs()).as(r.row()).isPositive();
      LostGrants.assertOnlyUnreplicatedGrantsLost(r.report());
      if (r.synchronous()) {
        assertThat(r.lostAckedGrants()).as("synchronous: nothing acknowledged is lost: " + r.row()).isZero();
      }
    }
  }
}
