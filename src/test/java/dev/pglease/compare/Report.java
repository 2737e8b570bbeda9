package dev.pglease.compare;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** Writes the comparison page (Markdown) and its SVG charts from a finished {@link Harness}. */
final class Report {
    private Report() {}

    static void write(Harness h, Path pageDir, Path chartDir, String command) throws IOException {
        Files.createDirectories(pageDir);
        Files.createDirectories(chartDir);
        String chartRel = pageDir.relativize(chartDir).toString().replace('\\', '/');
        List<Lane> lanes = h.lanes;
        StringBuilder s = new StringBuilder();
        Timings t = h.timings;

        s.append("# pglease compared with etcd, ZooKeeper, ShedLock and advisory locks\n\n");
        s.append("Measured side by side on one machine, in one run, by the harness in ")
                .append("`src/test/java/dev/pglease/compare/`. Every number on this page comes from that run")
                .append(h.plan.name().equals("full") ? "" : " (a **" + h.plan.name() + "** run, not the full one)")
                .append(".\n\n");
        s.append("- Command: `").append(command).append("`\n");
        s.append("- Plan `")
                .append(h.plan.name())
                .append("`: ")
                .append(h.plan.candidates())
                .append(" candidates per backend, ")
                .append(h.plan.killTrials())
                .append(" kill -9 trials, ")
                .append(h.plan.handoffTrials())
                .append(" handoff trials, ")
                .append(h.plan.pauseTrials())
                .append(" pause trials, steady state ")
                .append(sec(h.plan.steadyMs()))
                .append(", CPU load ")
                .append(sec(h.plan.loadMs()))
                .append(", store loss ")
                .append(h.plan.storeLoss() ? "yes" : "no")
                .append("\n");
        String logName = DateTimeFormatter.ISO_LOCAL_DATE.format(
                        Instant.ofEpochMilli(h.startedAt).atOffset(ZoneOffset.UTC))
                + "-comparison-run.md";
        s.append("- The run's date, duration, machine and load: [")
                .append(logName)
                .append("](benchmarks/")
                .append(logName)
                .append(")\n");

        for (String n : h.notes) {
            s.append("- Note: ").append(n).append("\n");
        }
        s.append("\nOnly the smoke version (one trial per backend) runs in the default build ")
                .append("(`ComparisonSmokeTest`, skipped when `/usr/bin/etcd` is missing). The full run: ")
                .append("`./mvnw -Pcompare verify` or `scripts/compare.sh`; it needs `etcd-server` and ")
                .append("`etcd-client` from Debian, the PostgreSQL 15 server binaries in ")
                .append("`/usr/lib/postgresql/15/bin` and root (for `runuser -u postgres`).\n\n");

        // ------------------------------------------------------------ setup
        s.append("## Setup\n\n");
        s.append("Every backend gets its own store, ")
                .append(h.plan.candidates())
                .append(" candidate processes (separate JVMs, `Candidate.java`) and the same workload: the leader ")
                .append("writes to a shared resource every ")
                .append(t.workMs())
                .append(" ms. The resource is a ")
                .append("separate PostgreSQL database that, for backends with a token, accepts a write only if ")
                .append("`token >= the highest token it has seen` (a forward-only fence, one transaction with the ")
                .append("write) and logs every accepted write. Backends without a token write unchecked; the ")
                .append("harness then counts, from that log, the writes a token would have rejected. All ")
                .append("backends get the same timings: a ")
                .append(sec(t.leaseMs()))
                .append(" lease, renewal ")
                .append("every ")
                .append(sec(t.retryMs()))
                .append(" (scaled down from pglease's defaults of ")
                .append("10 s / 6 s / 2 s so that the run fits in minutes; failover times scale with the lease).\n\n");
        s.append("| Backend | Store | Token | Settings |\n|---|---|---|---|\n");
        Map<String, String> settings = Harness.settings(t);
        for (Lane l : lanes) {
            s.append("| ")
                    .append(l.title)
                    .append(" | ")
                    .append(md(l.results.storeDescription))
                    .append(" | ")
                    .append(l.tokenDescription)
                    .append(" | ")
                    .append(md(settings.get(l.backend)))
                    .append(" |\n");
        }
        s.append("\nThe candidates' trials run concurrently across backends (one thread per backend), so all of ")
                .append("them share the machine's two cores the same way. Times are taken from the candidates' own ")
                .append("event timestamps (one machine, one clock).\n\n");

        // ------------------------------------------------------------ kill
        s.append("## Failover after kill -9 of the leader\n\n");
        s.append("Time from `kill -9` of the leader until another candidate reports itself elected (no leader in ")
                .append("between).\n\n");
        s.append("| Backend | Trials | p50 | p99 | min | max | no failover |\n|---|---|---|---|---|---|---|\n");
        List<Svg.Row> killRows = new ArrayList<>();
        for (Lane l : lanes) {
            Results r = l.results;
            s.append("| ")
                    .append(l.title)
                    .append(" | ")
                    .append(r.kill.size())
                    .append(" | ")
                    .append(ms(Results.percentile(r.kill, 50)))
                    .append(" | ")
                    .append(ms(Results.percentile(r.kill, 99)))
                    .append(" | ")
                    .append(ms(Results.percentile(r.kill, 0)))
                    .append(" | ")
                    .append(ms(Results.percentile(r.kill, 100)))
                    .append(" | ")
                    .append(r.killTimeouts)
                    .append(" |\n");
            killRows.add(new Svg.Row(l.title, new ArrayList<>(r.kill)));
        }
        Files.writeString(
                chartDir.resolve("failover-kill.svg"),
                Svg.strip("Failover after kill -9 of the leader", "milliseconds without a leader", killRows));
        s.append("\n![kill -9 failover](").append(chartRel).append("/failover-kill.svg)\n\n");
        s.append("Percentiles are nearest-rank: with fewer than 100 trials, p99 is the slowest trial.\n\n");

        // ------------------------------------------------------------ pause
        s.append("## Leader paused past its lease (SIGSTOP ")
                .append(sec(2 * t.leaseMs()))
                .append(", then SIGCONT)\n\n");
        s.append("Failover: time from SIGSTOP until another candidate is elected. Then the paused ex-leader is ")
                .append("resumed and watched for ")
                .append(sec(h.plan.observeMs()))
                .append(". *Writes started*: ")
                .append("protected writes the ex-leader began after its successor was elected (it should not ")
                .append("try any). *Accepted stale*: writes of the ex-leader that the resource accepted after the ")
                .append("new leader's first accepted write (from the resource's own log); with a token the fence ")
                .append("must reject them, without one they go through and are exactly the writes a token would ")
                .append("have rejected.\n\n");
        s.append(
                        "| Backend | Trials | failover p50 | failover max | writes started after takeover | rejected by token ")
                .append("| accepted stale | failed (error) |\n|---|---|---|---|---|---|---|---|\n");
        List<Svg.Bar> staleBars = new ArrayList<>();
        for (Lane l : lanes) {
            Results r = l.results;
            List<Long> fo = new ArrayList<>();
            int att = 0;
            int acc = 0;
            int rej = 0;
            int err = 0;
            int none = 0;
            for (Results.PauseTrial p : r.pauses) {
                if (p.failoverMs() >= 0) {
                    fo.add(p.failoverMs());
                } else {
                    none++;
                }
                att += p.attemptsAfterTakeover();
                acc += p.acceptedAfterTakeover();
                rej += p.rejected();
                err += p.errors();
            }
            s.append("| ")
                    .append(l.title)
                    .append(" | ")
                    .append(r.pauses.size())
                    .append(none > 0 ? " (" + none + " without failover)" : "")
                    .append(" | ")
                    .append(ms(Results.percentile(fo, 50)))
                    .append(" | ")
                    .append(ms(Results.percentile(fo, 100)))
                    .append(" | ")
                    .append(att)
                    .append(" | ")
                    .append(l.hasToken ? Integer.toString(rej) : "n/a (no token)")
                    .append(" | ")
                    .append(acc)
                    .append(" | ")
                    .append(err)
                    .append(" |\n");
            staleBars.add(new Svg.Bar(l.title, acc, acc + " accepted stale / " + att + " started"));
        }
        Files.writeString(
                chartDir.resolve("pause-stale-writes.svg"),
                Svg.bars("Stale writes accepted from the resumed ex-leader (all pause trials)", "writes", staleBars));
        s.append("\n![stale writes after a pause](").append(chartRel).append("/pause-stale-writes.svg)\n\n");

        // ------------------------------------------------------------ handoff
        s.append("## Graceful handoff (leader stops cleanly, SIGTERM)\n\n");
        s.append("Time from SIGTERM to the leader until another candidate is elected. Each candidate releases on ")
                .append("shutdown (pglease `close()`, etcd resign + lease revoke, Curator `LeaderLatch.close()`, ")
                .append("ShedLock `unlock()`, `pg_advisory_unlock`); the time includes the JVM's shutdown.\n\n");
        s.append("| Backend | Trials | p50 | p99 | max | no handoff | old leader's process exited (p50 / max) |\n")
                .append("|---|---|---|---|---|---|---|\n");
        List<Svg.Row> hoRows = new ArrayList<>();
        for (Lane l : lanes) {
            Results r = l.results;
            s.append("| ")
                    .append(l.title)
                    .append(" | ")
                    .append(r.handoff.size())
                    .append(" | ")
                    .append(ms(Results.percentile(r.handoff, 50)))
                    .append(" | ")
                    .append(ms(Results.percentile(r.handoff, 99)))
                    .append(" | ")
                    .append(ms(Results.percentile(r.handoff, 100)))
                    .append(" | ")
                    .append(r.handoffTimeouts)
                    .append(" | ")
                    .append(ms(Results.percentile(r.handoffExit, 50)))
                    .append(" / ")
                    .append(ms(Results.percentile(r.handoffExit, 100)))
                    .append(" |\n");
            hoRows.add(new Svg.Row(l.title, new ArrayList<>(r.handoff)));
        }
        Files.writeString(
                chartDir.resolve("handoff.svg"),
                Svg.strip("Graceful handoff: SIGTERM to the next leader", "milliseconds", hoRows));
        s.append("\n![graceful handoff](").append(chartRel).append("/handoff.svg)\n\n");

        // ------------------------------------------------------------ store loss
        s.append("## The store loses a member or its leader\n\n");
        s.append("The fault is injected while the candidates run; the harness then watches for ")
                .append("20 s. *Leader changes*: elections in that window (0 = the candidates did not notice). ")
                .append("*Longest write gap*: the longest time in the window without an accepted protected write ")
                .append("(normal: about ")
                .append(t.workMs())
                .append(" ms).\n\n");
        s.append("| Backend | Fault | Leader changes | Longest write gap |\n|---|---|---|---|\n");
        for (Lane l : lanes) {
            Results r = l.results;
            if (r.storeLoss.isEmpty()) {
                String why = r.notes.stream()
                        .filter(n -> n.contains("primary loss"))
                        .findFirst()
                        .orElse(h.plan.storeLoss() ? "not measured (see notes)" : "not part of this run");
                s.append("| ").append(l.title).append(" | ").append(md(why)).append(" | n/a | n/a |\n");
            }
            for (Results.StoreLoss x : r.storeLoss) {
                s.append("| ")
                        .append(l.title)
                        .append(" | ")
                        .append(md(x.what()))
                        .append(" | ")
                        .append(x.leaderChanges())
                        .append(" | ")
                        .append(ms(x.longestWriteGapMs()))
                        .append(" |\n");
            }
        }
        s.append("\nPostgres primary loss: ")
                .append(h.pg15Status)
                .append(". The PostgreSQL backends move to a ")
                .append("PostgreSQL 15 primary with a synchronous standby for this test (candidates connect with ")
                .append("a two-host JDBC URL, `targetServerType=primary`); the harness promotes the standby ")
                .append("right after the kill, so the numbers leave out the detection time of a failover manager ")
                .append("(Patroni's default TTL is 30 s).\n\n");
        // the failover through a real HA manager comes from its own run (./mvnw -Pha test): keep that block
        s.append(keptBlock(pageDir.resolve("comparison.md"), "<!-- ha-failover:begin -->", "<!-- ha-failover:end -->"));

        // ------------------------------------------------------------ steady
        s.append("## Steady state: store requests and CPU\n\n");
        s.append("Over ")
                .append(sec(h.plan.steadyMs()))
                .append(" with ")
                .append(h.plan.candidates())
                .append(" candidates, a leader and no faults. Requests are counted by the store itself (see the ")
                .append("counter column); store CPU is user + system time of every store process from ")
                .append("`/proc/<pid>/stat`, in % of one core. Idle = the same store with no clients, measured ")
                .append("before the candidates start.\n\n");
        s.append(
                        "| Backend | Requests/s (all candidates) | per candidate | Store CPU idle | Store CPU with candidates ")
                .append("| Leader changes | Counter |\n|---|---|---|---|---|---|---|\n");
        List<Svg.Bar> rpsBars = new ArrayList<>();
        List<Svg.Bar> cpuBars = new ArrayList<>();
        for (Lane l : lanes) {
            Results r = l.results;
            int n = h.plan.candidates();
            s.append("| ")
                    .append(l.title)
                    .append(" | ")
                    .append(num(r.requestsPerSec))
                    .append(" | ")
                    .append(num(r.requestsPerSec / n))
                    .append(" | ")
                    .append(pct(r.idleCpuPct))
                    .append(" | ")
                    .append(pct(r.steadyCpuPct))
                    .append(" | ")
                    .append(r.steadyLeaderChanges)
                    .append(" | ")
                    .append(md(r.requestCounter))
                    .append(" |\n");
            rpsBars.add(new Svg.Bar(l.title, Math.max(0, r.requestsPerSec / n), num(r.requestsPerSec / n) + "/s"));
            cpuBars.add(new Svg.Bar(
                    l.title,
                    Math.max(0, r.steadyCpuPct),
                    pct(r.steadyCpuPct) + (r.idleCpuPct >= 0 ? " (idle " + pct(r.idleCpuPct) + ")" : "")));
        }
        Files.writeString(
                chartDir.resolve("steady-requests.svg"),
                Svg.bars("Store requests per second per candidate (steady state)", "requests/s", rpsBars));
        Files.writeString(
                chartDir.resolve("steady-cpu.svg"),
                Svg.bars("Store CPU with candidates running", "% of one core", cpuBars));
        s.append("\n![requests per candidate](").append(chartRel).append("/steady-requests.svg)\n\n");
        s.append("![store CPU](").append(chartRel).append("/steady-cpu.svg)\n\n");
        s.append("The counters are not the same unit: a PostgreSQL transaction, an etcd gRPC message (a ")
                .append("keep-alive on a stream is one message) and a ZooKeeper packet (session pings included) ")
                .append("each cost the store something different. Read them as the request rate a store must ")
                .append("absorb per candidate, and look at CPU for the cost.\n\n");

        // ------------------------------------------------------------ load
        s.append("## False leader changes under CPU load\n\n");
        if (h.plan.loadMs() > 0) {
            s.append("Four busy loops (`sh -c 'while :; do :; done'`, nice 0) on the two cores for ")
                    .append(sec(h.plan.loadMs()))
                    .append(", with every candidate reniced to ")
                    .append(Harness.LOADED_NICE)
                    .append(" (all its threads) so that the candidates are starved ")
                    .append("far more than the stores (which compete with the busy loops at equal priority); no ")
                    .append("fault injected. Every election in that window is a false leader change.\n\n");
            s.append("| Backend | Window | Leader changes | Per hour (extrapolated) |\n|---|---|---|---|\n");
            for (Lane l : lanes) {
                Results r = l.results;
                s.append("| ")
                        .append(l.title)
                        .append(" | ")
                        .append(sec(r.loadWindowMs))
                        .append(" | ")
                        .append(r.loadLeaderChanges < 0 ? "n/a" : Long.toString(r.loadLeaderChanges))
                        .append(" | ")
                        .append(
                                r.loadLeaderChanges < 0 || r.loadWindowMs == 0
                                        ? "n/a"
                                        : num(r.loadLeaderChanges * 3_600_000.0 / r.loadWindowMs)
                                                + (r.loadLeaderChanges == 0
                                                        ? " (none seen; resolution " + num(3_600_000.0 / r.loadWindowMs)
                                                                + "/h)"
                                                        : ""))
                        .append(" |\n");
            }
            s.append('\n');
        } else {
            s.append("Not part of this run.\n\n");
        }

        // ------------------------------------------------------------ footprint
        s.append("## Operational footprint\n\n");
        s.append("| Backend | Store processes | Store memory (RSS) | Client connections to the store (")
                .append(h.plan.candidates())
                .append(" candidates) | Candidate JVM RSS (each) |\n|---|---|---|---|---|\n");
        for (Lane l : lanes) {
            Results r = l.results;
            s.append("| ")
                    .append(l.title)
                    .append(" | ")
                    .append(r.storeProcesses)
                    .append(" | ")
                    .append(r.storeRssMb)
                    .append(" MB | ")
                    .append(r.connections < 0 ? "n/a" : r.connections)
                    .append(" | ")
                    .append(r.candidateRssMb)
                    .append(" MB |\n");
        }
        s.append("\nPostgreSQL processes are the postmaster, its background workers and one backend per ")
                .append("connection; the PostgreSQL backends could share the application's existing database ")
                .append("(here each gets its own server so its CPU can be measured alone). etcd and ZooKeeper ")
                .append("are three extra services to deploy, monitor, back up and upgrade.\n\n");

        // ------------------------------------------------------------ notes
        boolean anyNotes = lanes.stream().anyMatch(l -> !l.results.notes.isEmpty());
        if (anyNotes) {
            s.append("## Problems during this run\n\n");
            for (Lane l : lanes) {
                for (String n : l.results.notes) {
                    s.append("- ").append(l.title).append(": ").append(md(n)).append('\n');
                }
            }
            s.append('\n');
        }

        s.append(Reading.text(h));
        Files.writeString(pageDir.resolve("comparison.md"), s);
        writeRunLog(h, pageDir, command);
    }

    /** The run's record: when it ran, how long, on what machine and under which load (not for the page). */
    private static void writeRunLog(Harness h, Path pageDir, String command) throws IOException {
        StringBuilder s = new StringBuilder();
        s.append("# Comparison run, ")
                .append(DateTimeFormatter.ISO_LOCAL_DATE.format(
                        Instant.ofEpochMilli(h.startedAt).atOffset(ZoneOffset.UTC)))
                .append("\n\n- Command: `")
                .append(command)
                .append("`\n");
        s.append("- Run: ")
                .append(DateTimeFormatter.ISO_LOCAL_DATE_TIME.format(Instant.ofEpochMilli(h.startedAt)
                        .atOffset(ZoneOffset.UTC)
                        .withNano(0)))
                .append(" UTC, took ")
                .append(sec(Math.max(0, (h.finishedAt > 0 ? h.finishedAt : System.currentTimeMillis()) - h.startedAt)))
                .append("\n");
        s.append("- Machine: ").append(machine()).append("\n");
        s.append("- Phases (wall clock): ");
        List<String> ph = new ArrayList<>();
        for (Map.Entry<String, Long> e : h.phaseMs.entrySet()) {
            ph.add(e.getKey() + " " + sec(e.getValue()));
        }
        s.append(String.join(", ", ph)).append("\n");
        s.append("- Machine load average (1 / 5 / 15 min) at the start and after each phase: ")
                .append(String.join("; ", h.loadAverages))
                .append(". Above 2 means processes outside this ")
                .append("run (other builds on a shared machine) competed for the two cores too.\n");
        Path dir = pageDir.resolve("benchmarks");
        Files.createDirectories(dir);
        Files.writeString(
                dir.resolve(DateTimeFormatter.ISO_LOCAL_DATE.format(
                                Instant.ofEpochMilli(h.startedAt).atOffset(ZoneOffset.UTC))
                        + "-comparison-run.md"),
                s);
    }

    /** The block between the markers in the existing page (markers included, then a blank line), or nothing. */
    static String keptBlock(Path page, String begin, String end) throws java.io.IOException {
        if (!Files.exists(page)) {
            return "";
        }
        String old = Files.readString(page);
        int b = old.indexOf(begin);
        int e = old.indexOf(end);
        return b < 0 || e < b ? "" : old.substring(b, e + end.length()) + "\n\n";
    }

    static String machine() {
        String cpu = "unknown CPU";
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    cpu = line.substring(line.indexOf(':') + 1).trim();
                    break;
                }
            }
        } catch (IOException e) {
            // keep unknown
        }
        return Runtime.getRuntime().availableProcessors() + " cores (" + cpu + "), Linux "
                + System.getProperty("os.version") + ", Java " + System.getProperty("java.version");
    }

    static String md(String v) {
        return v == null ? "" : v.replace("|", "\\|").replace("\n", " ");
    }

    static String ms(long v) {
        if (v < 0) {
            return "n/a";
        }
        return v < 1000 ? v + " ms" : String.format(Locale.ROOT, "%.2f s", v / 1000.0);
    }

    static String sec(long v) {
        return v % 1000 == 0 ? v / 1000 + " s" : String.format(Locale.ROOT, "%.1f s", v / 1000.0);
    }

    static String num(double v) {
        if (v < 0) {
            return "n/a";
        }
        return String.format(Locale.ROOT, v < 10 ? "%.2f" : "%.1f", v);
    }

    static String pct(double v) {
        return v < 0 ? "n/a" : String.format(Locale.ROOT, "%.1f %%", v);
    }
}
