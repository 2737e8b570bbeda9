package dev.pglease.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * One benchmark run: JMH first (per-call costs, each benchmark alone on the machine), then the scenario harness,
 * then a summary of every target. Writes Markdown to {@code target/bench/}. {@code full} is the documented run
 * (about 20 minutes: the 10-minute run at 500 ms leases overlaps the other scenarios); otherwise a smoke run with
 * tiny sizes.
 */
public final class FullRun {

    /** The run's Markdown and every figure, JMH rows included (as {@code jmh.<benchmark>.p50} etc., in µs). */
    /**
     * @param missed the targets this run missed (a row of the targets table each), empty when every one was met
     */
    public record Report(
            String markdown, Map<String, Double> figures, List<JmhLauncher.Row> jmh, List<String> missed) {}

    private FullRun() {}

    public static Report run(boolean full, Path outputDirectory) throws Exception {
        String started = Instant.now().toString();
        String loadBefore = loadAverage();
        StringBuilder md = new StringBuilder();
        Map<String, Double> figures = new LinkedHashMap<>();
        List<JmhLauncher.Row> jmh;
        List<Harness.Section> sections;
        String pgVersion;
        String profile;
        try (BenchDatabase db = BenchDatabase.start()) {
            pgVersion = (String) db.query("SELECT version()").get(0)[0];
            jmh = JmhLauncher.run(db.jdbcUrl(), full, ".*");
            for (JmhLauncher.Row r : jmh) {
                figures.put("jmh." + r.benchmark() + ".p50", r.p50());
                figures.put("jmh." + r.benchmark() + ".p99", r.p99());
                figures.put("jmh." + r.benchmark() + ".samples", (double) r.samples());
            }
            sections = new Harness(db, full ? Harness.Sizes.full() : Harness.Sizes.smoke()).runAll();
            for (Harness.Section s : sections) {
                figures.putAll(s.figures());
            }
            profile = HotPathProfile.run(db, full ? 2000 : 20, full ? 10_000 : 100);
        }
        String loadAfter = loadAverage();
        md.append("## Machine and run\n\n")
                .append("| | |\n|---|---|\n")
                .append("| run | ")
                .append(full ? "full" : "smoke")
                .append(", started ")
                .append(started)
                .append(", finished ")
                .append(Instant.now())
                .append(" |\n")
                .append("| CPU | ")
                .append(Runtime.getRuntime().availableProcessors())
                .append(" × ")
                .append(cpuModel())
                .append(" |\n")
                .append("| memory | ")
                .append(memTotal())
                .append(" |\n")
                .append("| OS | ")
                .append(System.getProperty("os.name"))
                .append(' ')
                .append(System.getProperty("os.version"))
                .append(" |\n")
                .append("| JVM | ")
                .append(System.getProperty("java.vm.name"))
                .append(' ')
                .append(System.getProperty("java.runtime.version"))
                .append(" |\n")
                .append("| PostgreSQL | ")
                .append(pgVersion.split(" on ")[0])
                .append(" (embedded, loopback TCP, fsync=on, synchronous_commit=on, shared_buffers=256MB) |\n")
                .append("| load average (1/5/15 min) | before: ")
                .append(loadBefore)
                .append("; after: ")
                .append(loadAfter)
                .append(" |\n\n");
        md.append("## Per-call costs (JMH, SampleTime, every call timed)\n\n")
                .append(JmhLauncher.table(jmh))
                .append('\n');
        md.append(Harness.render(sections));
        md.append("### Hot-path profile\n\n").append(profile).append('\n');
        List<String[]> targets = targets(figures);
        md.append("## Targets\n\n")
                .append(render(targets))
                .append('\n')
                .append("Load average (1/5/15 min) when the targets were judged: ")
                .append(loadAverage())
                .append(".\n");
        Files.createDirectories(outputDirectory);
        Path file = outputDirectory.resolve(full ? "performance-full.md" : "performance-smoke.md");
        Files.writeString(file, md.toString());
        List<String> missed = targets.stream()
                .filter(r -> !"yes".equals(r[3]))
                .map(r -> String.join(" | ", r))
                .toList();
        return new Report(md.toString(), figures, jmh, missed);
    }

    private static List<String[]> targets(Map<String, Double> f) {
        List<String[]> rows = new ArrayList<>();
        double renew = f.getOrDefault("jmh.renew.p50", Double.NaN) / 1000;
        rows.add(row("renew p50 through the library", "≤ 0.5 ms", ms(renew), renew <= 0.5));
        double acquire = f.getOrDefault("jmh.acquireGranted.p50", Double.NaN) / 1000;
        rows.add(row("acquire p50 through the library", "≤ 1 ms", ms(acquire), acquire <= 1));
        double side50 = f.getOrDefault("side.fenced.p50", Double.NaN) / f.getOrDefault("side.plain.p50", Double.NaN);
        rows.add(row(
                "fenced write / plain write, p50 (interleaved)",
                "≤ 1.3×",
                String.format(Locale.ROOT, "%.2f×", side50),
                side50 <= 1.3));
        double side99 = f.getOrDefault("side.fenced.p99", Double.NaN) / f.getOrDefault("side.plain.p99", Double.NaN);
        rows.add(row(
                "fenced write / plain write, p99 (interleaved)",
                "≤ 1.3×",
                String.format(Locale.ROOT, "%.2f×", side99),
                side99 <= 1.3));
        double ratio50 =
                f.getOrDefault("jmh.fencedWrite.p50", Double.NaN) / f.getOrDefault("jmh.plainWrite.p50", Double.NaN);
        rows.add(row(
                "fenced write / plain write, p50 (JMH, run one after the other)",
                "≤ 1.3×",
                String.format(Locale.ROOT, "%.2f×", ratio50),
                ratio50 <= 1.3));
        double protect100 = f.getOrDefault("protect.protected100.p50", Double.NaN)
                / f.getOrDefault("protect.plain100.p50", Double.NaN);
        rows.add(row(
                "fenced transaction of 100 rows, protected ÷ unprotected table, p50 (interleaved)",
                "≤ 1.2×",
                String.format(Locale.ROOT, "%.2f×", protect100),
                protect100 <= 1.2));
        // anchors: the JDBC locks a team would otherwise use, timed in the same interleaved rounds
        double shedlock = f.getOrDefault("side.shedlock.p50", Double.NaN);
        double acqrelOverShedlock = f.getOrDefault("side.acqrel.p50", Double.NaN) / shedlock;
        rows.add(row(
                "pglease acquire + release ÷ ShedLock lock + unlock, p50 (interleaved)",
                "≤ 1.5×",
                String.format(Locale.ROOT, "%.2f×", acqrelOverShedlock),
                acqrelOverShedlock <= 1.5));
        double renewOverShedlock = f.getOrDefault("side.renew.p50", Double.NaN) / shedlock;
        rows.add(row(
                "pglease renew ÷ ShedLock lock + unlock, p50 (interleaved)",
                "≤ 1×",
                String.format(Locale.ROOT, "%.2f×", renewOverShedlock),
                renewOverShedlock <= 1));
        double sideRenew = f.getOrDefault("side.renew.p50", Double.NaN);
        rows.add(row("renew p50 (interleaved run)", "≤ 0.5 ms", ms(sideRenew), sideRenew <= 0.5));
        double firstGrant = f.getOrDefault("first.warm.p50", Double.NaN) / f.getOrDefault("first.cold.p50", Double.NaN);
        rows.add(row(
                "a new session's first grant, warmed ÷ not warmed, p50 (interleaved)",
                "≤ 0.5×",
                String.format(Locale.ROOT, "%.2f×", firstGrant),
                firstGrant <= 0.5));
        double handoff = f.getOrDefault("handoff.db.p99", Double.NaN);
        rows.add(row("graceful handoff p99, release → grant (DB clock)", "≤ 20 ms", ms(handoff), handoff <= 20));
        double handoffClient = f.getOrDefault("handoff.client.p99", Double.NaN);
        rows.add(row(
                "graceful handoff p99, close() → onElected (client)",
                "≤ 20 ms",
                ms(handoffClient),
                handoffClient <= 20));
        for (String lease : List.of("1000", "500")) {
            Double gap = f.get("failover." + lease + ".p99");
            if (gap != null) {
                rows.add(row(
                        "crash failover p99, expiry → next grant, " + lease + " ms leases",
                        "≤ 50 ms",
                        ms(gap),
                        gap <= 50));
            }
        }
        Double changes = f.get("soak.leaderChanges");
        if (changes != null) {
            rows.add(row(
                    String.format(Locale.ROOT, "false leader changes, 500 ms leases, %.1f min", f.get("soak.minutes")),
                    "0 in 10 min",
                    String.format(Locale.ROOT, "%.0f", changes),
                    changes == 0 && f.get("soak.minutes") >= 9.99));
        }
        for (String k : f.keySet()) {
            if (k.startsWith("standbys.") && k.endsWith(".acquirePerLease")) {
                String n = k.split("\\.")[1];
                double a = f.get(k);
                double all = f.get("standbys." + n + ".allPerLease");
                rows.add(row(
                        n + " idle standbys: lease statements per standby per lease duration",
                        "≤ 2",
                        String.format(Locale.ROOT, "%.2f", a),
                        a <= 2));
                rows.add(row(
                        n
                                + " idle standbys: all statements (with the LISTEN health check) per standby per lease duration",
                        "≤ 2",
                        String.format(Locale.ROOT, "%.2f", all),
                        all <= 2));
            }
        }
        double perPeriod = f.getOrDefault("library.renewStatementsPerPeriod", Double.NaN);
        double rowsPer = f.getOrDefault("library.rowsPerStatement", Double.NaN);
        rows.add(row(
                "one node's leases renewed in one statement per renew period",
                "1 statement",
                String.format(Locale.ROOT, "%.2f statements per period, %.0f rows each", perPeriod, rowsPer),
                perPeriod <= 1.05 && rowsPer >= f.getOrDefault("library.leaders", 0.0) - 0.5));
        double best = 0;
        String bestKey = "";
        for (Map.Entry<String, Double> e : f.entrySet()) {
            if (e.getKey().startsWith("scale.") && e.getKey().endsWith(".rate") && e.getValue() > best) {
                best = e.getValue();
                bestKey = e.getKey();
            }
        }
        rows.add(row(
                "lease renewals per second (best: " + bestKey + ")",
                "≥ 100,000/s",
                String.format(Locale.ROOT, "%,.0f/s", best),
                best >= 100_000));
        return rows;
    }

    private static String render(List<String[]> rows) {
        StringBuilder sb = new StringBuilder("| target | goal | measured | met |\n|---|---|---|---|\n");
        for (String[] r : rows) {
            sb.append("| ").append(String.join(" | ", r)).append(" |\n");
        }
        return sb.toString();
    }

    private static String[] row(String what, String goal, String measured, boolean met) {
        return new String[] {what, goal, measured, met ? "yes" : "**no**"};
    }

    private static String ms(double v) {
        return Stats.f(v) + " ms";
    }

    private static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split(" ");
            return f[0] + " / " + f[1] + " / " + f[2];
        } catch (Exception e) {
            return "unknown";
        }
    }

    private static String cpuModel() {
        try {
            return Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
                    .filter(l -> l.startsWith("model name"))
                    .findFirst()
                    .map(l -> l.substring(l.indexOf(':') + 1).trim())
                    .orElse("unknown");
        } catch (Exception e) {
            return "unknown";
        }
    }

    private static String memTotal() {
        try {
            return Files.readAllLines(Path.of("/proc/meminfo")).stream()
                    .filter(l -> l.startsWith("MemTotal"))
                    .findFirst()
                    .map(l -> l.substring(l.indexOf(':') + 1).trim())
                    .orElse("unknown");
        } catch (Exception e) {
            return "unknown";
        }
    }

    public static void main(String[] args) throws Exception {
        boolean full = args.length == 0 || !args[0].equals("smoke");
        Path out = Path.of(args.length > 1 ? args[1] : "target/bench");
        Report r = run(full, out);
        System.out.println(r.markdown());
        System.out.println("written to " + out.resolve(full ? "performance-full.md" : "performance-smoke.md"));
    }
}
