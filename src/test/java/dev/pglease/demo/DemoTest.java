package dev.pglease.demo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.LeaseException;
import dev.pglease.TestDatabase;
import dev.pglease.cli.Main;
import dev.pglease.cli.NodeProcess;
import dev.pglease.http.FencingHeaders;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import picocli.CommandLine;

/** The demo, shortened, with real node processes, real signals and the real database. */
class DemoTest {

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void theShortenedDemoChargesNobodyTwiceAndRefusesTheStaleLeadersLateCharge() throws Exception {
        String schema = TestDatabase.freshSchema();
        String demoSchema = "demo_" + ProcessHandle.current().pid();
        StringWriter out = new StringWriter();
        CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(out, true));
        int code = cl.execute(
                "demo",
                "--jdbc-url",
                TestDatabase.jdbcUrl(),
                "--schema",
                schema,
                "--demo-schema",
                demoSchema,
                "--duration",
                "6s",
                "--view",
                "lines",
                "--node-classpath",
                NodeProcess.classpath());
        DemoSummary summary = ((DemoCommand) cl.getSubcommands().get("demo").getCommand()).summary();
        String log = out.toString();

        assertThat(summary).as(log).isNotNull();
        assertThat(summary.problems()).as(log).isEmpty();
        assertThat(code).as(log).isZero();
        assertThat(summary.duplicateCharges()).as(log).isZero();
        assertThat(summary.staleRejected()).as(log).isGreaterThanOrEqualTo(1);
        assertThat(summary.chargesMade()).as(log).isPositive();
        assertThat(summary.failovers()).as(log).hasSize(2);
        for (DemoSummary.Failover f : summary.failovers()) {
            assertThat(f.to()).as(log).isNotNull().isNotEqualTo(f.from());
            assertThat(f.toToken()).isGreaterThan(f.fromToken());
            // a standby can only take over once the lease expired: at most leaseDuration (2 s) after the fault,
            // plus its retry period and start-up noise on a loaded machine
            assertThat(f.millis()).as(log).isBetween(0L, 10_000L);
        }
        assertThat(log)
                .contains(
                        "!! DROP SCHEMA " + demoSchema + " CASCADE",
                        ">> SIGSTOP",
                        ">> SIGCONT",
                        ">> kill -9",
                        "provider REJECTED",
                        "== summary ==",
                        "duplicate charges (same subscription+period):   0");

        // the provider's own books agree: every (subscription, period) charged at most once
        try (Connection c = TestDatabase.dataSource().getConnection()) {
            long[] totals = DemoSchema.totals(c, demoSchema);
            assertThat(totals[0]).isEqualTo(totals[1]).isEqualTo(summary.chargesMade());
            assertThat(totals[2]).isEqualTo(summary.staleRejected());
        }
        // and every process the demo started is gone
        assertThat(ProcessHandle.current()
                        .descendants()
                        .filter(p -> p.info().commandLine().orElse("").contains("demo-charger"))
                        .toList())
                .isEmpty();
        TestDatabase.execute("DROP SCHEMA " + demoSchema + " CASCADE");
    }

    @Test
    @Timeout(value = 180, unit = TimeUnit.SECONDS)
    void onItsEmbeddedServerTheChargersRunWithACandidateOnlyLoginAgainstAProtectedTable() {
        StringWriter out = new StringWriter();
        CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(out, true));
        int code =
                cl.execute("demo", "--duration", "4s", "--view", "lines", "--node-classpath", NodeProcess.classpath());
        String log = out.toString();
        DemoSummary summary = ((DemoCommand) cl.getSubcommands().get("demo").getCommand()).summary();
        assertThat(summary.problems()).as(log).isEmpty();
        assertThat(code).as(log).isZero();
        assertThat(log)
                .contains("the chargers log in as " + DemoLogins.CHARGER + ", a member of pglease_candidate only")
                .contains("protected with the lease \"payments\"")
                .doesNotContain("!! the chargers log in as --jdbc-url's login");
        assertThat(summary.duplicateCharges()).as(log).isZero();
        assertThat(summary.chargesMade()).as(log).isPositive();
    }

    @Test
    void withAJdbcUrlTheDemoDropsOnlyASchemaItMade() throws Exception {
        String schema = TestDatabase.freshSchema();
        String precious = "precious_" + ProcessHandle.current().pid();
        TestDatabase.execute("CREATE SCHEMA " + precious);
        TestDatabase.execute("CREATE TABLE " + precious + ".orders (id int)");
        StringWriter out = new StringWriter();
        CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(out, true));
        int code = cl.execute(
                "demo",
                "--jdbc-url",
                TestDatabase.jdbcUrl(),
                "--schema",
                schema,
                "--demo-schema",
                precious,
                "--view",
                "lines",
                "--node-classpath",
                NodeProcess.classpath());
        assertThat(code).as(out.toString()).isEqualTo(1);
        assertThat(out.toString())
                .contains("schema " + precious + " exists", "was not made by pglease demo", "another --demo-schema")
                .doesNotContain("DROP SCHEMA");
        try (Connection c = TestDatabase.dataSource().getConnection();
                java.sql.ResultSet rs =
                        c.createStatement().executeQuery("SELECT to_regclass('" + precious + ".orders') IS NOT NULL")) {
            rs.next();
            assertThat(rs.getBoolean(1))
                    .as("the schema the demo did not make is untouched")
                    .isTrue();
        }
        TestDatabase.execute("DROP SCHEMA " + precious + " CASCADE");
    }

    @Test
    @Timeout(value = 120, unit = TimeUnit.SECONDS)
    void stoppingTheDemoMidwayStopsEveryNodeItStarted() throws Exception {
        String schema = TestDatabase.freshSchema();
        String demoSchema = "demo_stop_" + ProcessHandle.current().pid();
        Process demo = new ProcessBuilder(dev.pglease.testkit.JavaProcess.pglease(
                        List.of("-XX:TieredStopAtLevel=1"),
                        "demo",
                        "--jdbc-url",
                        TestDatabase.jdbcUrl(),
                        "--schema",
                        schema,
                        "--demo-schema",
                        demoSchema,
                        "--duration",
                        "60s",
                        "--view",
                        "lines",
                        "--node-classpath",
                        NodeProcess.classpath()))
                .redirectErrorStream(true)
                .start();
        List<Long> nodePids = new ArrayList<>();
        StringBuilder log = new StringBuilder();
        try (BufferedReader out =
                new BufferedReader(new InputStreamReader(demo.getInputStream(), StandardCharsets.UTF_8))) {
            Pattern started = Pattern.compile("node\\d+ started \\(pid (\\d+),");
            String line;
            while ((line = out.readLine()) != null) {
                log.append(line).append('\n');
                Matcher m = started.matcher(line);
                if (m.find()) {
                    nodePids.add(Long.parseLong(m.group(1)));
                }
                if (line.contains("-- steady state")) {
                    break;
                }
            }
            assertThat(nodePids).as(log.toString()).hasSize(3);
            assertThat(nodePids)
                    .allSatisfy(pid -> assertThat(ProcessHandle.of(pid)).isPresent());
            // SIGTERM runs the same shutdown hook as Ctrl-C (SIGINT)
            assertThat(dev.pglease.testkit.JavaProcess.terminate(demo, 30_000))
                    .as("the demo exits")
                    .isTrue();
        } finally {
            dev.pglease.testkit.JavaProcess.kill(demo);
        }
        for (long pid : nodePids) {
            Optional<ProcessHandle> node = ProcessHandle.of(pid);
            assertThat(node.map(ProcessHandle::isAlive).orElse(false))
                    .as("node pid " + pid + " still alive\n" + log)
                    .isFalse();
        }
        TestDatabase.execute("DROP SCHEMA " + demoSchema + " CASCADE");
    }

    @Test
    void theProviderAcceptsTokensOnlyForwardAndCountsStaleOnes() throws Exception {
        String demoSchema = "provider_" + ProcessHandle.current().pid();
        DemoSchema.create(TestDatabase.dataSource(), demoSchema, 3, Duration.ofSeconds(4));
        List<PaymentProvider.Rejection> rejections = new ArrayList<>();
        try (PaymentProvider provider = new PaymentProvider(TestDatabase.dataSource(), demoSchema, rejections::add)) {
            HttpClient http = HttpClient.newHttpClient();
            URI base = provider.uri();
            assertThat(post(http, base, "/charge?subscription=1&period=1&amount=100", "5"))
                    .isEqualTo(200);
            assertThat(post(http, base, "/charge?subscription=2&period=1&amount=100", "5"))
                    .isEqualTo(200);
            assertThat(post(http, base, "/claim", "6")).isEqualTo(200);
            assertThat(post(http, base, "/charge?subscription=1&period=1&amount=100", "5"))
                    .isEqualTo(409);
            assertThat(post(http, base, "/claim", "5")).isEqualTo(409);
            assertThat(post(http, base, "/charge?subscription=3&period=1&amount=100", "6"))
                    .isEqualTo(200);
            assertThat(post(http, base, "/charge?subscription=3&period=1&amount=100", null))
                    .isEqualTo(400);
            HttpResponse<String> lookup = http.send(
                    HttpRequest.newBuilder(base.resolve("/charges?subscription=1&period=1"))
                            .GET()
                            .build(),
                    HttpResponse.BodyHandlers.ofString());
            assertThat(lookup.body()).contains("\"charged\":true");
            assertThat(provider.accepted()).isEqualTo(3);
            assertThat(provider.rejected()).isEqualTo(1);
            assertThat(rejections).singleElement().satisfies(r -> {
                assertThat(r.token()).isEqualTo(5);
                assertThat(r.fence()).isEqualTo(6);
                assertThat(r.alreadyCharged()).isTrue();
            });
        }
        assertThatThrownBy(() -> {
                    try (Connection c = TestDatabase.dataSource().getConnection()) {
                        c.setAutoCommit(false);
                        new dev.pglease.ForwardFence(demoSchema + ".provider_fence").advance(c, "payments", 4);
                    }
                })
                .isInstanceOfSatisfying(
                        LeaseException.class, e -> assertThat(e.reason()).isEqualTo(LeaseException.Reason.STALE_TOKEN));
        TestDatabase.execute("DROP SCHEMA " + demoSchema + " CASCADE");
    }

    private static int post(HttpClient http, URI base, String path, String token) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(base.resolve(path))
                .POST(HttpRequest.BodyPublishers.noBody())
                .header(PaymentProvider.HOLDER_HEADER, "test/1/x");
        if (token != null) {
            FencingHeaders.of("payments", Long.parseLong(token)).forEach(b::header);
        }
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString()).statusCode();
    }
}
