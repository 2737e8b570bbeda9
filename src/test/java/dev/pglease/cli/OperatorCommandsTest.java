package dev.pglease.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.internal.tool.Databases;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** The operator commands against the real (embedded or external) test database, run in-process through picocli. */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class OperatorCommandsTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final LeaderListener NONE = new LeaderListener() {
        @Override
        public void onElected(Leadership leadership) {}

        @Override
        public void onRevoked(Leadership leadership) {}
    };

    private static String schema;
    private static String url;
    private static PgLease alpha;
    private static PgLease beta;

    record Result(int code, String out, String err) {}

    @BeforeAll
    static void setUp() {
        schema = TestDatabase.freshSchema();
        url = TestDatabase.jdbcUrl();
        alpha = PgLease.create(TestDatabase.dataSource(), config("alpha"));
        beta = PgLease.create(TestDatabase.dataSource(), config("beta"));
    }

    @AfterAll
    static void tearDown() {
        alpha.close();
        beta.close();
    }

    private static LeaseConfig config(String label) {
        return LeaseConfig.builder()
                .schema(schema)
                .leaseDuration(Duration.ofSeconds(3))
                .renewDeadline(Duration.ofSeconds(2))
                .retryPeriod(Duration.ofMillis(300))
                .holderLabel(label)
                .build();
    }

    static Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        picocli.CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(args);
        return new Result(code, out.toString(), err.toString());
    }

    private static String[] withDb(String... args) {
        String[] all = new String[args.length + 4];
        System.arraycopy(args, 0, all, 0, args.length);
        all[args.length] = "--jdbc-url";
        all[args.length + 1] = url;
        all[args.length + 2] = "--schema";
        all[args.length + 3] = schema;
        return all;
    }

    private static Leadership lead(PgLease pglease, String lease) throws InterruptedException {
        Elector elector = pglease.elector(lease, NONE);
        return elector.awaitLeadership(Duration.ofSeconds(10)).orElseThrow(() -> new AssertionError("not elected"));
    }

    @SuppressWarnings("unchecked")
    private static List<Map<String, Object>> jsonArray(String text) throws Exception {
        return JSON.readValue(text, List.class);
    }

    @Test
    void statusShowsHolderTokenAndRemainingTimeAsTableAndJson() throws Exception {
        String lease = "status-" + System.nanoTime();
        Leadership l = lead(alpha, lease);

        Result table = run(withDb("status"));
        assertThat(table.code()).as(table.err()).isZero();
        assertThat(table.out()).contains("LEASE", "HOLDER", "TOKEN", "TERM.COUNTER", "REMAINING", "LAST CHANGE");
        String row =
                table.out().lines().filter(x -> x.startsWith(lease)).findFirst().orElseThrow();
        assertThat(row).contains(l.holder(), " " + l.token() + " ", " 1." + l.token() + " ", "yes", "acquired", "ago");

        Result json = run(withDb("status", lease, "--json"));
        assertThat(json.code()).isZero();
        List<Map<String, Object>> leases = jsonArray(json.out());
        assertThat(leases).hasSize(1);
        Map<String, Object> s = leases.get(0);
        assertThat(s)
                .containsEntry("lease", lease)
                .containsEntry("holder", l.holder())
                .containsEntry("held", true)
                .containsEntry("last_event", "acquired");
        assertThat(((Number) s.get("token")).longValue()).isEqualTo(l.token());
        assertThat(s)
                .as("term 1 (a server never failed over), counter = token")
                .containsEntry("term_token", "1." + l.token());
        assertThat(((Number) s.get("remaining_ms")).longValue()).isBetween(1L, 3_000L);
        assertThat(s).containsKeys("expires_at", "last_change", "holder_role");

        Result unknown = run(withDb("status", "no-such-lease-" + System.nanoTime()));
        assertThat(unknown.code()).isEqualTo(ExitCodes.FAILED);
        assertThat(unknown.err()).contains("no lease named no-such-lease-");
        Result partly = run(withDb("status", lease, "no-such-lease", "--json"));
        assertThat(partly.code()).isEqualTo(ExitCodes.FAILED);
        assertThat(jsonArray(partly.out())).hasSize(1);
    }

    @Test
    void releaseForceReleasesThroughTheOperatorFunctionAndHistoryShowsIt() throws Exception {
        String lease = "release-" + System.nanoTime();
        Leadership l = lead(alpha, lease);

        Result released = run(withDb("release", lease));
        assertThat(released.code()).as(released.err()).isZero();
        assertThat(released.out()).contains("released lease " + lease, l.holder(), "token is now " + (l.token() + 1));
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps =
                        c.prepareStatement("SELECT holder, token FROM " + schema + ".leases WHERE name = ?")) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                // the old holder lost it at once; it (or another candidate) may only come back with a higher token
                assertThat(rs.getLong(2)).isGreaterThan(l.token());
            }
        }

        Result history = run(withDb("history", lease, "--json"));
        assertThat(history.code()).as(history.err()).isZero();
        List<Map<String, Object>> events = jsonArray(history.out());
        assertThat(events).extracting(e -> e.get("kind")).startsWith("acquired", "force_released");
        assertThat(events.get(1)).containsEntry("previous_holder", l.holder());
        assertThat(((Number) events.get(1).get("token")).longValue()).isEqualTo(l.token() + 1);
        assertThat(events.get(1)).containsEntry("term_token", "1." + (l.token() + 1));

        Result table = run(withDb("history", lease, "--limit", "1"));
        assertThat(table.code()).isZero();
        assertThat(table.out().lines().count()).as(table.out()).isEqualTo(2);
        assertThat(table.out()).contains("AT (UTC)", "EVENT");

        String idle = "never-held-" + System.nanoTime();
        TestDatabase.execute("INSERT INTO " + schema + ".leases (name, holder, token, expires_at) VALUES ('" + idle
                + "', NULL, 1, clock_timestamp())");
        Result notHeld = run(withDb("release", idle));
        assertThat(notHeld.code()).isEqualTo(ExitCodes.FAILED);
        assertThat(notHeld.err()).contains("is not held");
        assertThat(run(withDb("release", "no-such-" + System.nanoTime())).code())
                .isEqualTo(ExitCodes.FAILED);
        Result noHistory = run(withDb("history", "no-such-" + System.nanoTime()));
        assertThat(noHistory.code()).isEqualTo(ExitCodes.FAILED);
        assertThat(noHistory.err()).contains("no history");
    }

    @Test
    void anOperatorLoginCanReleaseAndAnObserverLoginCanOnlyLook() throws Exception {
        assumeTrue(TestDatabase.isEmbedded(), "creates login roles without passwords (trust authentication)");
        String lease = "roles-" + System.nanoTime();
        Leadership l = lead(alpha, lease);
        String ops = "cli_ops_" + ProcessHandle.current().pid();
        String observer = "cli_observer_" + ProcessHandle.current().pid();
        TestDatabase.execute("CREATE ROLE " + ops + " LOGIN IN ROLE " + schema + "_operator");
        TestDatabase.execute("CREATE ROLE " + observer + " LOGIN IN ROLE " + schema + "_observer");
        try {
            String observerUrl = url.replaceFirst("user=[^&]*", "user=" + observer);
            assertThat(run("status", "--jdbc-url", observerUrl, "--schema", schema, lease)
                            .code())
                    .isZero();
            assertThat(run("history", "--jdbc-url", observerUrl, "--schema", schema, lease)
                            .code())
                    .isZero();
            assertThat(run("watch", "--jdbc-url", observerUrl, "--schema", schema, "--for", "100ms")
                            .code())
                    .isZero();
            Result refused = run("release", "--jdbc-url", observerUrl, "--schema", schema, lease);
            assertThat(refused.code()).as(refused.err()).isEqualTo(ExitCodes.FAILED);
            assertThat(refused.err()).contains("permission denied");

            Result released = run(
                    "release", "--jdbc-url", url.replaceFirst("user=[^&]*", "user=" + ops), "--schema", schema, lease);
            assertThat(released.code()).as(released.err()).isZero();
            assertThat(released.out()).contains(l.holder(), "token is now " + (l.token() + 1));
            // (alpha still campaigns, so it may have acquired the lease again since)
            Result history = run(withDb("history", lease, "--json"));
            assertThat(jsonArray(history.out()))
                    .filteredOn(e -> "force_released".equals(e.get("kind")))
                    .singleElement()
                    .satisfies(e -> assertThat(e).containsEntry("changed_by", ops));
        } finally {
            TestDatabase.execute("DROP ROLE " + ops);
            TestDatabase.execute("DROP ROLE " + observer);
        }
    }

    @Test
    void handoffMovesTheLeaseToTheNamedCandidate() throws Exception {
        String lease = "handoff-" + System.nanoTime();
        Leadership first = lead(alpha, lease);
        Elector standby = beta.elector(lease, NONE);
        try {
            Result r = run(withDb("handoff", lease, "--to", "beta/", "--json"));
            assertThat(r.code()).as(r.err()).isZero();
            @SuppressWarnings("unchecked")
            Map<String, Object> outcome = JSON.readValue(r.out(), Map.class);
            assertThat(outcome)
                    .containsEntry("lease", lease)
                    .containsEntry("action", "handoff")
                    .containsEntry("previous_holder", first.holder())
                    .containsEntry("to_prefix", "beta/");
            Leadership next = standby.awaitLeadership(Duration.ofSeconds(10))
                    .orElseThrow(() -> new AssertionError("beta did not take over after the handoff"));
            assertThat(next.holder()).startsWith("beta/");
            assertThat(next.token()).isGreaterThan(first.token());
            // the old holder learns at its next renewal (a notification wakes standbys, it never renews a leader)
            org.awaitility.Awaitility.await("the old holder steps down")
                    .atMost(Duration.ofSeconds(2))
                    .until(() -> !first.isValid());
        } finally {
            standby.close();
        }
        Result history = run(withDb("history", lease));
        assertThat(history.out()).contains("handed_off");
    }

    @Test
    void watchPrintsEveryChangeWhenTheDatabaseCommitsIt() throws Exception {
        String lease = "watch-" + System.nanoTime();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        picocli.CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        CompletableFuture<Integer> watching = CompletableFuture.supplyAsync(
                () -> cl.execute(withDb("watch", lease, "--json", "--count", "2", "--for", "30s")));
        awaitListening(err);

        Leadership l = lead(alpha, lease);
        TestDatabase.execute("SELECT " + schema + ".force_release('" + lease + "')");
        assertThat(watching.get(20, TimeUnit.SECONDS)).isZero();
        List<Map<String, Object>> events = out.toString()
                .lines()
                .map(line -> {
                    try {
                        @SuppressWarnings("unchecked")
                        Map<String, Object> m = JSON.readValue(line, Map.class);
                        return m;
                    } catch (Exception e) {
                        throw new AssertionError("not a JSON line: " + line, e);
                    }
                })
                .toList();
        assertThat(events).extracting(e -> e.get("kind")).containsExactly("acquired", "force_released");
        assertThat(events.get(0)).containsEntry("lease", lease).containsEntry("holder", l.holder());
        assertThat(((Number) events.get(1).get("token")).longValue()).isEqualTo(l.token() + 1);
        assertThat(events.get(1).get("holder")).isNull();
    }

    @Test
    void watchReconnectsWhenItsConnectionIsKilledAndKeepsReporting() throws Exception {
        String lease = "reconnect-" + System.nanoTime();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        picocli.CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        CompletableFuture<Integer> watching =
                CompletableFuture.supplyAsync(() -> cl.execute(withDb("watch", lease, "--count", "1", "--for", "40s")));
        long start = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        // in text mode it listens, says so, reads the status and prints it: wait for the status, after which the
        // watch connection only waits for notifications
        while (!out.toString().contains("(no leases yet)") && System.nanoTime() < start) {
            Thread.sleep(50);
        }
        assertThat(out.toString()).contains("watching " + lease, "(no leases yet)");
        // the watch connection is the only open connection of the CLI now
        TestDatabase.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                + "WHERE application_name = 'pglease-cli' AND pid <> pg_backend_pid()");
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!err.toString().contains("reconnected") && System.nanoTime() < end) {
            Thread.sleep(50);
        }
        assertThat(err.toString()).contains("connection lost", "reconnecting", "reconnected");
        Leadership l = lead(alpha, lease);
        assertThat(watching.get(20, TimeUnit.SECONDS)).isZero();
        assertThat(out.toString()).contains(lease + "  acquired", "holder " + l.holder());
    }

    @Test
    void watchPrintsTheChangesCommittedWhileItWasDisconnected() throws Exception {
        String lease = "missed-" + System.nanoTime();
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        picocli.CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        CompletableFuture<Integer> watching = CompletableFuture.supplyAsync(
                () -> cl.execute(withDb("watch", lease, "--json", "--count", "1", "--for", "40s")));
        awaitListening(err);
        TestDatabase.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                + "WHERE application_name = 'pglease-cli' AND pid <> pg_backend_pid()");
        // committed before watch can have reconnected (it waits a second first): no notification reaches it
        TestDatabase.execute("INSERT INTO " + schema + ".leases (name, holder, token, expires_at) VALUES ('" + lease
                + "', 'while-away', 1, clock_timestamp() + interval '1 minute')");
        assertThat(watching.get(20, TimeUnit.SECONDS)).as(err.toString()).isZero();
        assertThat(err.toString()).contains("connection lost", "reconnected");
        @SuppressWarnings("unchecked")
        Map<String, Object> event = JSON.readValue(out.toString().strip(), Map.class);
        assertThat(event)
                .containsEntry("lease", lease)
                .containsEntry("kind", "acquired")
                .containsEntry("holder", "while-away");
    }

    @Test
    void watchInTextModeShowsTheStatusFirstAndStopsAfterItsTime() {
        Result r = run(withDb("watch", "--for", "300ms"));
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("watching all leases in schema " + schema, "LISTEN \"" + schema + ".leases\"");
    }

    /** Waits until watch says it listens (in --json mode on stderr): from then on every change is reported. */
    private static void awaitListening(StringWriter err) throws Exception {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
        while (!err.toString().contains("(LISTEN") && System.nanoTime() < end) {
            Thread.sleep(50);
        }
        assertThat(err.toString()).as("watch listens").contains("watching", "(LISTEN");
    }

    @Test
    void migrateCreatesTheSchemaAndIsIdempotent() throws Exception {
        String fresh = "cli_migrate_" + ProcessHandle.current().pid();
        Result first = run("migrate", "--jdbc-url", url, "--schema", fresh);
        assertThat(first.code()).as(first.err()).isZero();
        assertThat(first.out()).contains("migrated schema " + fresh, "now at version");
        Result again = run("migrate", "--jdbc-url", url, "--schema", fresh);
        assertThat(again.code()).isZero();
        assertThat(again.out()).contains("is up to date");
        Result status = run("status", "--jdbc-url", url, "--schema", fresh);
        assertThat(status.code()).isZero();
        assertThat(status.out()).contains("no leases in schema " + fresh);
        try (Connection c = TestDatabase.dataSource().getConnection();
                Statement s = c.createStatement()) {
            s.execute("DROP SCHEMA " + fresh + " CASCADE");
        }
    }

    @Test
    void anUnreachableDatabaseGivesOneLineExitCode3AndNoPassword() throws Exception {
        int port;
        try (ServerSocket socket = new ServerSocket(0)) {
            port = socket.getLocalPort();
        }
        String dead = "jdbc:postgresql://127.0.0.1:" + port + "/postgres?user=ops&password=s3cret-pw";
        for (String[] command : List.of(
                new String[] {"status"},
                new String[] {"watch"},
                new String[] {"history", "payments"},
                new String[] {"release", "payments"},
                new String[] {"handoff", "payments"},
                new String[] {"migrate"})) {
            String[] args = new String[command.length + 2];
            System.arraycopy(command, 0, args, 0, command.length);
            args[command.length] = "--jdbc-url";
            args[command.length + 1] = dead;
            Result r = run(args);
            assertThat(r.code())
                    .as(String.join(" ", command) + ": " + r.err())
                    .isEqualTo(ExitCodes.DATABASE_UNREACHABLE);
            assertThat(r.err().strip())
                    .as(command[0])
                    .doesNotContain("\n")
                    .startsWith("pglease " + command[0] + ": ")
                    .contains("can not connect to", "127.0.0.1:" + port, "password=*** (");
            assertThat(r.out() + r.err()).doesNotContain("s3cret-pw");
        }
    }

    @Test
    void aMissingSchemaGivesExitCode4AndSaysHowToFixIt() {
        for (String[] command : List.of(
                new String[] {"status"},
                new String[] {"watch"},
                new String[] {"history", "payments"},
                new String[] {"release", "payments"},
                new String[] {"handoff", "payments"})) {
            String[] args = new String[command.length + 4];
            System.arraycopy(command, 0, args, 0, command.length);
            System.arraycopy(
                    new String[] {"--jdbc-url", url, "--schema", "no_such_schema"}, 0, args, command.length, 4);
            Result r = run(args);
            assertThat(r.code()).as(command[0] + ": " + r.err()).isEqualTo(ExitCodes.SCHEMA_MISSING);
            assertThat(r.err().strip())
                    .doesNotContain("\n")
                    .contains("schema no_such_schema has no pglease tables", "pglease migrate");
        }
    }

    @Test
    void badUsageGivesExitCode2() {
        Result badSchema = run("status", "--jdbc-url", url, "--schema", "Robert'); DROP TABLE x;--");
        assertThat(badSchema.code()).isEqualTo(ExitCodes.USAGE);
        assertThat(badSchema.err()).contains("not a valid schema name");
        Result notPostgres = run("status", "--jdbc-url", "jdbc:mysql://localhost/x");
        assertThat(notPostgres.code()).isEqualTo(ExitCodes.USAGE);
        assertThat(run("history").code()).as("missing NAME").isEqualTo(ExitCodes.USAGE);
        assertThat(run("status", "--no-such-option").code()).isEqualTo(ExitCodes.USAGE);
        if (System.getenv(Databases.URL_VARIABLE) == null) {
            Result none = run("status");
            assertThat(none.code()).isEqualTo(ExitCodes.USAGE);
            assertThat(none.err()).contains("pass --jdbc-url or set PGLEASE_JDBC_URL");
        }
    }

    @Test
    void everyCommandHasHelpAPersonCanFollow() {
        Result top = run("--help");
        assertThat(top.code()).isZero();
        assertThat(top.out())
                .contains(
                        "demo",
                        "node",
                        "status",
                        "watch",
                        "history",
                        "release",
                        "handoff",
                        "protect",
                        "unprotect",
                        "migrate")
                .doesNotContain("demo-charger");
        for (String command :
                List.of("status", "watch", "history", "release", "handoff", "protect", "unprotect", "migrate")) {
            Result r = run(command, "--help");
            assertThat(r.code()).as(command).isZero();
            assertThat(r.out())
                    .as(command)
                    .contains(
                            "Usage: pglease " + command,
                            "--jdbc-url",
                            "PGLEASE_JDBC_URL",
                            "--schema",
                            "Example: pglease " + command,
                            "Exit codes");
        }
        assertThat(run("demo", "--help").out()).contains("--nodes", "--lease-duration", "--duration", "--jdbc-url");
    }

    @Test
    void everyJsonKeyTheCommandsPrintIsLowerSnakeCase() throws Exception {
        String lease = "keys-" + System.nanoTime();
        lead(alpha, lease);
        StringWriter watchOut = new StringWriter();
        StringWriter watchErr = new StringWriter();
        picocli.CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(watchOut, true));
        cl.setErr(new PrintWriter(watchErr, true));
        CompletableFuture<Integer> watching = CompletableFuture.supplyAsync(
                () -> cl.execute(withDb("watch", lease, "--json", "--count", "1", "--for", "20s")));
        awaitListening(watchErr);
        List<String> outputs = new java.util.ArrayList<>();
        outputs.add(run(withDb("status", "--json")).out());
        outputs.add(run(withDb("handoff", lease, "--json")).out());
        assertThat(watching.get(20, TimeUnit.SECONDS)).isZero();
        outputs.add(watchOut.toString());
        outputs.add(run(withDb("history", lease, "--json")).out());
        lead(alpha, lease + "-2");
        outputs.add(run(withDb("release", lease + "-2", "--json")).out());
        java.util.Set<String> keys = new java.util.TreeSet<>();
        for (String output : outputs) {
            assertThat(output).as("JSON output").isNotBlank();
            collectKeys(JSON.readTree(output), keys);
        }
        assertThat(keys)
                .contains("previous_holder", "term_token", "remaining_ms")
                .allSatisfy(k -> assertThat(k).matches("[a-z][a-z0-9]*(_[a-z0-9]+)*"));
    }

    private static void collectKeys(com.fasterxml.jackson.databind.JsonNode node, java.util.Set<String> keys) {
        node.fields().forEachRemaining(e -> {
            keys.add(e.getKey());
            collectKeys(e.getValue(), keys);
        });
        node.elements().forEachRemaining(e -> collectKeys(e, keys));
    }

    @Test
    void theJdbcUrlCanComeFromTheEnvironment() throws Exception {
        String lease = "env-" + System.nanoTime();
        Leadership l = lead(alpha, lease);
        ProcessBuilder pb = new ProcessBuilder(dev.pglease.testkit.JavaProcess.pglease(
                        dev.pglease.testkit.JavaProcess.SMALL, "status", "--schema", schema, lease))
                .redirectErrorStream(true);
        pb.environment().put(Databases.URL_VARIABLE, url);
        Process p = pb.start();
        try {
            String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
            assertThat(p.exitValue()).as(output).isZero();
            assertThat(output).contains(lease, l.holder());
        } finally {
            dev.pglease.testkit.JavaProcess.kill(p);
        }
    }
}
