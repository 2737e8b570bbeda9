package dev.pglease.spring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.LeaderListener;
import dev.pglease.LeaseConfig;
import dev.pglease.Leadership;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.cli.NodeProcess;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.springframework.jdbc.core.JdbcTemplate;

/**
 * Graceful drain on deploy: SIGTERM reaches a Spring application while its {@link LeaderOnly} task (3 s, ending in
 * a fenced transaction) is in flight. The task completes, and only then is the lease released: the standby's grant
 * follows the task's last commit at once (target 50 ms; both times on the database clock, printed with the load).
 */
class DrainTest {

    private static final Duration TASK_TIMEOUT = Duration.ofSeconds(30);

    @Test
    void sigtermLetsTheTaskFinishThenTheStandbyTakesOverAtOnce() throws Exception {
        String schema = TestDatabase.freshSchema();
        TestDatabase.execute("CREATE TABLE " + schema + ".done (at timestamptz NOT NULL)");
        String lease = "drain";
        String url = TestDatabase.jdbcUrl() + (TestDatabase.jdbcUrl().contains("?") ? "&" : "?")
                + "currentSchema=" + schema;
        Process app = new ProcessBuilder(java(), "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp",
                NodeProcess.classpath(), DrainApplication.class.getName(),
                "--spring.datasource.url=" + url, "--pglease.schema=" + schema,
                "--pglease.election.lease-name=" + lease, "--pglease.election.drain-timeout=10s",
                "--pglease.lease-duration=2s", "--pglease.renew-deadline=1500ms", "--pglease.retry-period=500ms",
                "--spring.main.banner-mode=off")
                .redirectError(ProcessBuilder.Redirect.appendTo(
                        new File(System.getProperty("java.io.tmpdir"), "pglease-drain-app-stderr.log")))
                .start();
        BlockingQueue<String> lines = new LinkedBlockingQueue<>();
        Thread reader = new Thread(() -> read(app, lines), "drain-app-output");
        reader.setDaemon(true);
        reader.start();
        try (PgLease standby = PgLease.create(TestDatabase.dataSource(), LeaseConfig.builder().schema(schema)
                .leaseDuration(Duration.ofSeconds(2)).renewDeadline(Duration.ofMillis(1500))
                .retryPeriod(Duration.ofMillis(500)).build())) {
            await(lines, "leader ");
            try (var elector = standby.elector(lease, new LeaderListener() {
                @Override
                public void onElected(Leadership leadership) {
                }

                @Override
                public void onRevoked(Leadership leadership) {
                }
            })) {
                await(lines, "started");
                app.destroy(); // SIGTERM, as a deploy sends it
                assertThat(app.waitFor(TASK_TIMEOUT.toSeconds(), TimeUnit.SECONDS)).as("the application exits").isTrue();
                JdbcTemplate jdbc = new JdbcTemplate(TestDatabase.dataSource());
                assertThat(jdbc.queryForObject("SELECT count(*) FROM " + schema + ".done", Integer.class))
                        .as("the task in flight completed, its fenced write committed").isEqualTo(1);
                Leadership taken = elector.awaitLeadership(Duration.ofSeconds(5)).orElseThrow();
                Double gapMillis = jdbc.queryForObject("SELECT extract(epoch FROM (SELECT min(at) FROM " + schema
                        + ".lease_events WHERE name = ? AND holder = ?) - (SELECT max(at) FROM " + schema
                        + ".done)) * 1000", Double.class, lease, standby.holderId());
                String load = Files.readString(Path.of("/proc/loadavg")).strip();
                System.out.printf("drain: task done -> standby grant (token %d): %.1f ms; load %s on %d cores%n",
                        taken.token(), gapMillis, load, Runtime.getRuntime().availableProcessors());
                Files.writeString(Path.of(System.getProperty("pglease.buildDirectory", "target"),
                        "drain-measurement.txt"), String.format("task done -> standby grant: %.1f ms; "
                        + "loadavg %s; cores %d%n", gapMillis, load, Runtime.getRuntime().availableProcessors()));
                assertThat(gapMillis).as("the standby's grant came after the task's last commit").isPositive();
                // The target is 50 ms (README figures); on a loaded shared machine scheduling adds tens of ms, so the
                // check is that the lease was released, not left to expire (that takes the 2 s lease duration).
                assertThat(gapMillis).as("released at once, not left to expire").isLessThan(1000.0);
            }
        } finally {
            if (app.isAlive()) {
                app.destroyForcibly();
            }
        }
    }

    private static String java() {
        return System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
    }

    private static void read(Process process, BlockingQueue<String> lines) {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getInputStream(),
                StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                lines.add(line);
            }
        } catch (IOException ignored) {
            // process ended
        }
    }

    /** Waits for a line starting with {@code prefix}; lines before it stay unread in the queue's past. */
    private static void await(BlockingQueue<String> lines, String prefix) throws InterruptedException {
        long end = System.nanoTime() + TASK_TIMEOUT.toNanos();
        List<String> seen = new java.util.ArrayList<>();
        while (System.nanoTime() < end) {
            String line = lines.poll(100, TimeUnit.MILLISECONDS);
            if (line != null) {
                seen.add(line);
                if (line.startsWith(prefix)) {
                    return;
                }
            }
        }
        throw new AssertionError("no line starting with '" + prefix + "' within " + TASK_TIMEOUT + "; saw " + seen);
    }
}
