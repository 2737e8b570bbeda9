package dev.pglease.bench;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.infra.BenchmarkParams;
import org.openjdk.jmh.profile.GCProfiler;
import org.openjdk.jmh.results.Result;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.util.Statistics;

/** Runs the JMH benchmarks (LeaseStatementBenchmark) against one server and turns the results into a table. */
public final class JmhLauncher {

    /** One benchmark's figures, in microseconds (allocation in bytes per operation, -1 when not profiled). */
    public record Row(
            String benchmark, long samples, double p50, double p90, double p99, double mean, double allocBytes) {}

    private JmhLauncher() {}

    /**
     * @param full   a full run (1 fork, 3 warm-up iterations of 2 s, 5 measured iterations of 3 s, GC profiler);
     *               otherwise a smoke run in this JVM (one 200 ms warm-up, one 300 ms measurement)
     * @param filter regular expression of benchmark names, e.g. {@code ".*"}
     */
    public static List<Row> run(String jdbcUrl, boolean full, String filter) throws RunnerException {
        String pattern = "dev\\.pglease\\.LeaseStatementBenchmark\\." + filter;
        ChainedOptionsBuilder options = new OptionsBuilder()
                .include(pattern)
                .shouldFailOnError(true)
                .jvmArgsAppend("-D" + BenchDatabase.URL_PROPERTY + "=" + jdbcUrl, "-Xmx512m")
                .timeUnit(TimeUnit.MICROSECONDS);
        if (full) {
            options.forks(1)
                    .warmupIterations(3)
                    .warmupTime(TimeValue.seconds(2))
                    .measurementIterations(5)
                    .measurementTime(TimeValue.seconds(3))
                    .addProfiler(GCProfiler.class);
        } else {
            System.setProperty(BenchDatabase.URL_PROPERTY, jdbcUrl);
            options.forks(0)
                    .warmupIterations(1)
                    .warmupTime(TimeValue.milliseconds(100))
                    .measurementIterations(1)
                    .measurementTime(TimeValue.milliseconds(150));
        }
        Collection<RunResult> results = new Runner(options.build()).run();
        List<Row> rows = new ArrayList<>();
        for (RunResult r : results) {
            BenchmarkParams params = r.getParams();
            String name = params.getBenchmark().substring(params.getBenchmark().lastIndexOf('.') + 1);
            Result<?> primary = r.getPrimaryResult();
            Statistics s = primary.getStatistics();
            double alloc = -1;
            Map<String, Result> secondary = r.getSecondaryResults();
            Result<?> norm = secondary.get("gc.alloc.rate.norm");
            if (norm != null) {
                alloc = norm.getScore();
            }
            rows.add(new Row(
                    name, s.getN(), s.getPercentile(50), s.getPercentile(90), s.getPercentile(99), s.getMean(), alloc));
        }
        return rows;
    }

    /** A Markdown table of the rows, with the ratio of each row's p50 to the row named {@code baseline}. */
    public static String table(List<Row> rows) {
        StringBuilder sb = new StringBuilder();
        sb.append("| benchmark | samples | p50 µs | p90 µs | p99 µs | mean µs | alloc B/op |\n");
        sb.append("|---|---:|---:|---:|---:|---:|---:|\n");
        for (Row r : rows) {
            sb.append(String.format(
                    java.util.Locale.ROOT,
                    "| %s | %d | %.0f | %.0f | %.0f | %.0f | %s |%n",
                    r.benchmark(),
                    r.samples(),
                    r.p50(),
                    r.p90(),
                    r.p99(),
                    r.mean(),
                    r.allocBytes() < 0 ? "–" : String.format(java.util.Locale.ROOT, "%.0f", r.allocBytes())));
        }
        return sb.toString();
    }

    public static void main(String[] args) throws Exception {
        boolean full = args.length == 0 || !args[0].equals("smoke");
        String filter = args.length > 1 ? args[1] : ".*";
        try (BenchDatabase db = BenchDatabase.start()) {
            System.out.println(table(run(db.jdbcUrl(), full, filter)));
        }
    }
}
