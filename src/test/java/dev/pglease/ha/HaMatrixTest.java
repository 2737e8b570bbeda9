package dev.pglease.ha;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Required;
import dev.pglease.fault.LostGrants;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Every failover of the matrix, one fresh cluster each: per HA manager, synchronous and asynchronous mode, primary
 * killed, paused past the manager's timeout, and switched over by the manager, each repeated
 * {@code -Dpglease.ha.runs} times (default 1). Writes each manager's measured table into docs/ha.md (between its
 * table markers), with the machine and its load, and rebuilds the store-failover rows of docs/comparison.md from
 * those tables. {@code -Dpglease.ha.managers=patroni} (or {@code pg_auto_failover}) runs one manager and leaves the
 * other's table as it was. Run with {@code ./mvnw -Pha test -Dtest=HaMatrixTest}.
 */
@Tag("ha-full")
class HaMatrixTest {
    private static final Path PAGE = Path.of("docs/ha.md");
    private static final Path COMPARISON = Path.of("docs/comparison.md");
    private static final String COMPARISON_BEGIN = "<!-- ha-failover:begin -->";
    private static final String COMPARISON_END = "<!-- ha-failover:end -->";
    private static final Pattern LOAD_AFTER = Pattern.compile("after: ([^;]+);");

    private static String begin(HaCluster.Manager m) {
        return "<!-- ha-table:" + m.name().toLowerCase(Locale.ROOT) + ":begin -->";
    }

    private static String end(HaCluster.Manager m) {
        return "<!-- ha-table:" + m.name().toLowerCase(Locale.ROOT) + ":end -->";
    }

    private static String block(String text, String begin, String end, Path page) {
        int b = text.indexOf(begin);
        int e = text.indexOf(end);
        assertThat(b).as("marker " + begin + " in " + page).isNotNegative();
        assertThat(e).as("marker " + end + " in " + page).isGreaterThan(b);
        return text.substring(b + begin.length(), e);
    }

    private static void replaceBlock(Path page, String begin, String end, String inner) throws IOException {
        String text = Files.readString(page, StandardCharsets.UTF_8);
        block(text, begin, end, page);
        int b = text.indexOf(begin);
        int e = text.indexOf(end);
        Files.writeString(
                page,
                text.substring(0, b) + begin + "\n" + inner + end + text.substring(e + end.length()),
                StandardCharsets.UTF_8);
    }

    static List<HaCluster.Manager> managers() {
        String names = System.getProperty("pglease.ha.managers", "").trim();
        return names.isEmpty()
                ? List.of(HaCluster.Manager.values())
                : Arrays.stream(names.split(","))
                        .map(HaCluster.Manager::named)
                        .distinct()
                        .toList();
    }

    static int runs() {
        String v = System.getProperty("pglease.ha.runs", "1").trim();
        try {
            int n = Integer.parseInt(v);
            if (n >= 1) {
                return n;
            }
        } catch (NumberFormatException ignored) {
            // reported below
        }
        throw new IllegalArgumentException("pglease.ha.runs = '" + v + "': allowed is a whole number of at least 1");
    }

    /** One row of a manager's table: the runs of one mode and fault. */
    static String row(List<HaRun.Result> runs) {
        HaRun.Result first = runs.get(0);
        long[] ms = runs.stream().mapToLong(HaRun.Result::endToEndMs).sorted().toArray();
        long missing = Arrays.stream(ms).filter(x -> x < 0).count();
        long[] seen = Arrays.stream(ms).filter(x -> x >= 0).toArray();
        String time;
        if (seen.length == 0) {
            time = "no new leader";
        } else if (runs.size() == 1) {
            time = seconds(seen[0]);
        } else {
            time = "median " + seconds(seen[seen.length / 2]) + " ("
                    + seconds(seen[0]).replace(" s", "") + "–" + seconds(seen[seen.length - 1]) + ")"
                    + (missing > 0 ? ", " + missing + " without a new leader" : "");
        }
        long minChanges =
                runs.stream().mapToLong(HaRun.Result::leaderChanges).min().orElse(0);
        long maxChanges =
                runs.stream().mapToLong(HaRun.Result::leaderChanges).max().orElse(0);
        Set<String> tokens = new LinkedHashSet<>();
        runs.forEach(r -> tokens.add(HaRun.text(r.tokenBefore()) + " → " + HaRun.text(r.tokenAfter())));
        return String.format(
                Locale.ROOT,
                "| %s | %s | %s | %d | %s | %s | %d | %d | %d | %s |",
                first.manager(),
                first.synchronous() ? "sync" : "async",
                first.fault().label,
                runs.size(),
                time,
                minChanges == maxChanges ? Long.toString(minChanges) : minChanges + "–" + maxChanges,
                runs.stream().mapToInt(HaRun.Result::lostAckedGrants).sum(),
                runs.stream().mapToInt(HaRun.Result::repeatedTokens).sum(),
                runs.stream().mapToLong(HaRun.Result::staleWritesAccepted).sum(),
                String.join(", ", tokens));
    }

    private static String seconds(long ms) {
        return String.format(Locale.ROOT, "%.1f s", ms / 1000.0);
    }

    static String header() {
        return "| manager | replication | fault | runs | fault → new pglease leader | leader changes | lost acknowledged "
                + "grants | tokens granted twice | stale writes accepted | token before → after (term.counter) |\n"
                + "|---|---|---|---|---|---|---|---|---|---|";
    }

    /**
     * The comparison page's rows, rebuilt from every manager's table in docs/ha.md: the PostgreSQL store's failover
     * including the HA manager's detection, primary killed.
     */
    static String comparisonRows(String page) {
        StringBuilder s =
                new StringBuilder("**Store failover including detection.** The rows above promote the standby "
                        + "by hand right after the kill. Through a real HA manager (the tables in [ha.md](ha.md), written by "
                        + "`./mvnw -Pha test -Dtest=HaMatrixTest`), the primary killed, time from the kill to a pglease leader "
                        + "again:\n\n"
                        + "| Backend | Store failover including detection | Fault → leader again | Leader changes | Tokens granted "
                        + "twice | Load at the end (1/5/15 min) |\n|---|---|---|---|---|---|\n");
        for (HaCluster.Manager m : HaCluster.Manager.values()) {
            String table = block(page, begin(m), end(m), PAGE);
            Matcher load = LOAD_AFTER.matcher(table);
            String loadAfter = load.find() ? load.group(1) : "not recorded";
            boolean withRuns = table.contains("| runs |");
            for (String line : table.split("\n")) {
                String[] cells = line.split("\\|");
                if (cells.length < 9 || !cells[3].trim().equals(HaRun.Fault.KILL.label)) {
                    continue;
                }
                int c = withRuns ? 5 : 4;
                s.append("| pglease via ")
                        .append(m.label)
                        .append(" (")
                        .append(cells[2].trim().equals("sync") ? "synchronous" : "asynchronous")
                        .append(" standby) | primary ")
                        .append("killed (kill -9), ")
                        .append(m.detection)
                        .append(" | ")
                        .append(cells[c].trim())
                        .append(" | ")
                        .append(cells[c + 1].trim())
                        .append(" | ")
                        .append(cells[c + 3].trim())
                        .append(" | ")
                        .append(loadAfter)
                        .append(" |\n");
            }
        }
        s.append(
                "| etcd + jetcd election, ZooKeeper + Curator | the store's own leader killed: the members elect a new "
                        + "one by themselves | see the table above (no manager needed) | see above | - | - |\n\n");
        return s.toString();
    }

    @Test
    void everyManagerModeAndFault() throws IOException {
        List<HaCluster.Manager> managers = managers();
        int runs = runs();
        for (HaCluster.Manager m : managers) {
            Required.assume(m.available(), m.needs);
        }
        List<HaRun.Result> all = new ArrayList<>();
        for (HaCluster.Manager m : managers) {
            String loadBefore = Machine.load();
            long started = System.nanoTime();
            StringBuilder table = new StringBuilder();
            List<String> rows = new ArrayList<>();
            List<String> undone = new ArrayList<>();
            long twoPrimaries = 0;
            for (boolean sync : new boolean[] {true, false}) {
                for (HaRun.Fault fault : HaRun.Fault.values()) {
                    List<HaRun.Result> results = new ArrayList<>();
                    for (int i = 0; i < runs; i++) {
                        HaRun.Result r = HaRun.run(m, sync, fault);
                        System.out.println(HaRun.Result.header() + "\n" + r.row());
                        results.add(r);
                    }
                    rows.add(row(results));
                    all.addAll(results);
                    long u =
                            results.stream().filter(r -> r.timelines().undone()).count();
                    if (u > 0) {
                        undone.add((sync ? "sync" : "async") + " " + fault.label + ": " + u + " of " + runs);
                    }
                    twoPrimaries += results.stream()
                            .filter(r -> r.timelines().twoPrimaries() > 0)
                            .count();
                }
            }
            table.append("Measured ")
                    .append(java.time.LocalDate.now())
                    .append(" on ")
                    .append(Machine.describe())
                    .append("; load before: ")
                    .append(loadBefore)
                    .append(", after: ")
                    .append(Machine.load())
                    .append("; whole matrix ")
                    .append((System.nanoTime() - started) / 1_000_000_000L)
                    .append(" s.\n\n");
            table.append(header()).append('\n');
            rows.forEach(r -> table.append(r).append('\n'));
            table.append("\nPromotions the manager undid (the promoted node demoted and rewound onto the old primary's "
                            + "timeline, which went on as primary): ")
                    .append(undone.isEmpty() ? "none" : String.join("; ", undone))
                    .append(". Runs in which two nodes answered as primary at the same poll (every 250 ms): ")
                    .append(twoPrimaries)
                    .append(" of ")
                    .append(6 * runs)
                    .append(".\n");
            replaceBlock(PAGE, begin(m), end(m), table.toString());
            System.out.println(table);
        }
        replaceBlock(
                COMPARISON,
                COMPARISON_BEGIN,
                COMPARISON_END,
                comparisonRows(Files.readString(PAGE, StandardCharsets.UTF_8)));
        for (HaRun.Result r : all) {
            assertThat(r.endToEndMs()).as(r.row()).isPositive();
            LostGrants.assertOnlyUnreplicatedGrantsLost(r.report());
            if (r.synchronous()) {
                assertThat(r.lostAckedGrants())
                        .as("synchronous: nothing acknowledged is lost: " + r.row())
                        .isZero();
            }
        }
    }
}
