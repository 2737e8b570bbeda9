package dev.pglease.spring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseObserver;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.testkit.JavaProcess;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.springframework.jdbc.core.JdbcTemplate;

/**
 * One graceful drain: {@link DrainApplication} in its own JVM leads and runs its 3-second task, a standby campaigns
 * in this JVM, SIGTERM reaches the application mid-task. Returns where the time between the task's last write and
 * the standby's grant went, from timestamps on one clock (the database's and both JVMs' on this machine).
 */
final class DrainRun {

    private static final Duration TIMEOUT = Duration.ofSeconds(30);

    /**
     * Milliseconds of each step after the task's fenced write (its {@code clock_timestamp()}):
     *
     * @param commit  write → the fenced transaction committed and returned (application)
     * @param drain   → the drain saw the task end and the elector stepped down (application, shutdown thread)
     * @param release → the release statement ran (its {@code lease_events} row)
     * @param wake    → the standby sent its acquire (NOTIFY delivery, listener thread, election loop)
     * @param acquire → the standby's grant (its {@code lease_events} row)
     * @param total   the task's write → the standby's grant
     */
    record Timings(double commit, double drain, double release, double wake, double acquire, double total) {

        static final String HEADER = "| run | commit | drain | release | standby wake | acquire | total |";

        String row(int run) {
            return String.format(
                    Locale.ROOT,
                    "| %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |",
                    run,
                    commit,
                    drain,
                    release,
                    wake,
                    acquire,
                    total);
        }
    }

    private DrainRun() {}

    static Timings once() throws Exception {
        String schema = TestDatabase.freshSchema();
        TestDatabase.execute("CREATE TABLE " + schema + ".done (at timestamptz NOT NULL)");
        String lease = "drain";
        String url =
                TestDatabase.jdbcUrl() + (TestDatabase.jdbcUrl().contains("?") ? "&" : "?") + "currentSchema=" + schema;
        Process app = new ProcessBuilder(JavaProcess.command(
                        List.of("-Xmx256m", "-XX:TieredStopAtLevel=1"),
                        DrainApplication.class.getName(),
                        List.of(
                                "--spring.datasource.url=" + url,
                                "--pglease.schema=" + schema,
                                "--pglease.election.lease-name=" + lease,
                                "--pglease.election.drain-timeout=10s",
                                "--pglease.lease-duration=2s",
                                "--pglease.renew-deadline=1500ms",
                                "--pglease.retry-period=500ms",
                                "--spring.main.banner-mode=off")))
                .redirectError(ProcessBuilder.Redirect.appendTo(
                        new File(System.getProperty("java.io.tmpdir"), "pglease-drain-app-stderr.log")))
                .start();
        BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        Map<String, Long> steps = new HashMap<>();
        Thread reader = new Thread(() -> read(app, lines), "drain-app-output");
        reader.setDaemon(true);
        reader.start();
        AtomicLong acquireSent = new AtomicLong();
        LeaseObserver standbyObserver = new LeaseObserver() {
            @Override
            public void acquireAttempted(String leaseName, boolean granted, long token, Duration latency) {
                if (granted) {
                    acquireSent.compareAndSet(0, micros(Instant.now()) - latency.toNanos() / 1_000);
                }
            }
        };
        try (PgLease standby = PgLease.create(
                TestDatabase.dataSource(),
                LeaseConfig.builder()
                        .schema(schema)
                        .leaseDuration(Duration.ofSeconds(2))
                        .renewDeadline(Duration.ofMillis(1500))
                        .retryPeriod(Duration.ofMillis(500))
                        .observer(standbyObserver)
                        .build())) {
            await(lines, "leader ", steps);
            try (var elector = standby.elector(lease, new LeaderListener() {
                @Override
                public void onElected(Leadership leadership) {}

                @Override
                public void onRevoked(Leadership leadership) {}
            })) {
                await(lines, "started", steps);
                assertThat(JavaProcess.terminate(app, TIMEOUT.toMillis()))
                        .as("the application exits")
                        .isTrue();
                reader.join(TIMEOUT.toMillis());
                for (String line; (line = lines.poll()) != null; ) {
                    step(line, steps);
                }
                JdbcTemplate jdbc = new JdbcTemplate(TestDatabase.dataSource());
                assertThat(jdbc.queryForObject("SELECT count(*) FROM " + schema + ".done", Integer.class))
                        .as("the task in flight completed, its fenced write committed")
                        .isEqualTo(1);
                elector.awaitLeadership(Duration.ofSeconds(5)).orElseThrow();
                long written = jdbc.queryForObject(
                        "SELECT (extract(epoch FROM max(at)) * 1000000)::bigint FROM " + schema + ".done", Long.class);
                long released = jdbc.queryForObject(
                        "SELECT (extract(epoch FROM min(at)) * 1000000)::bigint FROM " + schema
                                + ".lease_events WHERE name = ? AND kind = 'released'",
                        Long.class,
                        lease);
                long granted = jdbc.queryForObject(
                        "SELECT (extract(epoch FROM min(at)) * 1000000)::bigint FROM " + schema
                                + ".lease_events WHERE name = ? AND holder = ?",
                        Long.class,
                        lease,
                        standby.holderId());
                assertThat(steps)
                        .as("the application printed its shutdown steps")
                        .containsKeys("committed", "stepped-down");
                assertThat(acquireSent.get())
                        .as("the standby's grant was observed")
                        .isPositive();
                long committed = steps.get("committed");
                long steppedDown = steps.get("stepped-down");
                return new Timings(
                        ms(committed - written),
                        ms(steppedDown - committed),
                        ms(released - steppedDown),
                        ms(acquireSent.get() - released),
                        ms(granted - acquireSent.get()),
                        ms(granted - written));
            }
        } finally {
            JavaProcess.kill(app);
        }
    }

    private static double ms(long micros) {
        return micros / 1000.0;
    }

    private static long micros(Instant t) {
        return t.getEpochSecond() * 1_000_000 + t.getNano() / 1_000;
    }

    private static void step(String line, Map<String, Long> steps) {
        if (line.startsWith("at ")) {
            String[] f = line.split(" ");
            steps.putIfAbsent(f[1], Long.parseLong(f[2]));
        }
    }

    private static void read(Process process, BlockingQueue<String> lines) {
        try (BufferedReader r =
                new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line; (line = r.readLine()) != null; ) {
                lines.add(line);
            }
        } catch (IOException ignored) {
            // process ended
        }
    }

    /** Waits for a line starting with {@code prefix}, keeping the steps printed before it. */
    private static void await(BlockingQueue<String> lines, String prefix, Map<String, Long> steps)
            throws InterruptedException {
        long end = System.nanoTime() + TIMEOUT.toNanos();
        List<String> seen = new ArrayList<>();
        while (System.nanoTime() < end) {
            String line = lines.poll(100, TimeUnit.MILLISECONDS);
            if (line != null) {
                seen.add(line);
                step(line, steps);
                if (line.startsWith(prefix)) {
                    return;
                }
            }
        }
        throw new AssertionError("no line starting with '" + prefix + "' within " + TIMEOUT + "; saw " + seen);
    }
}
