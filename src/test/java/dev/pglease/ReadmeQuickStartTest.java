package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;
import static org.awaitility.Awaitility.await;

import dev.pglease.cli.Main;
import dev.pglease.internal.tool.EmbeddedPostgresServer;
import dev.pglease.testkit.JavaProcess;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.StringWriter;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.SimpleJavaFileObject;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * The README's set-up and quick start, followed as a newcomer would on a PostgreSQL of their own (a fresh server, so
 * the roles the README creates are the only ones there): every SQL block of "Set up on your PostgreSQL" runs as the
 * login the README names, the migration runs as the README's {@code pglease migrate} command, and two copies of the
 * quick-start worker run exactly as written, with the README's command ({@code java PaymentsWorker.java URL}) and
 * the candidate-only login. Their lease is then taken away by the operator login, with the README's {@code pglease
 * release}, while their notifications are down (so that the holder meets the loss in its own fenced write, not only
 * through the elector), until a worker has reported a refused charge: both must go on, a worker must lead again with
 * a higher token, the table must hold no charge after a higher token's, and an unfenced write must be refused.
 * SIGTERM must release the lease.
 */
class ReadmeQuickStartTest {

    private static final Pattern QUICK_START = Pattern.compile(
            "<!-- quick-start:begin -->\\s*```java\\n(.*?)```\\s*<!-- quick-start:end -->", Pattern.DOTALL);
    private static final Pattern SETUP_BLOCK =
            Pattern.compile("(?:<!-- setup:([a-z_]+) -->\\s*)?```(sql|sh)\\n(.*?)\\n\\s*```", Pattern.DOTALL);
    private static final Pattern LEASE_GROUP = Pattern.compile(
            "<!-- lease-group:begin -->\\s*```java\\n(.*?)```\\s*<!-- lease-group:end -->", Pattern.DOTALL);
    private static final Pattern URL = Pattern.compile("'(jdbc:postgresql://[^']+)'");

    private static EmbeddedPostgresServer server;
    private static String readme;

    @BeforeAll
    static void server() throws IOException, SQLException {
        readme = Files.readString(Path.of("README.md"));
        server = EmbeddedPostgresServer.start();
        run(null, "postgres", "CREATE DATABASE payments");
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
    }

    @Test
    void theQuickStartCompilesWithoutWarnings(@TempDir Path out) {
        compiles("PaymentsWorker", quickStart(), out);
    }

    /** The lease-group example is a method body: it compiles in a method that has a PgLease and a shard's work. */
    @Test
    void theLeaseGroupExampleCompilesWithoutWarnings(@TempDir Path out) {
        Matcher m = LEASE_GROUP.matcher(readme);
        assertThat(m.find()).as("README has the lease-group java block").isTrue();
        String source = String.join(
                "\n",
                "import dev.pglease.GroupListener;",
                "import dev.pglease.LeaseGroup;",
                "import dev.pglease.Leadership;",
                "import dev.pglease.PgLease;",
                "import java.sql.Connection;",
                "import java.util.Optional;",
                "public class LeaseGroupExample {",
                "    static int billShard(Connection connection, int shard) {",
                "        return shard;",
                "    }",
                "    static void example(PgLease pglease) throws Exception {",
                m.group(1),
                "    }",
                "}");
        compiles("LeaseGroupExample", source, out);
    }

    private static void compiles(String className, String source, Path out) {
        JavaCompiler compiler = ToolProvider.getSystemJavaCompiler();
        JavaFileObject file =
                new SimpleJavaFileObject(URI.create("string:///" + className + ".java"), JavaFileObject.Kind.SOURCE) {
                    @Override
                    public CharSequence getCharContent(boolean ignoreEncodingErrors) {
                        return source;
                    }
                };
        StringWriter diagnostics = new StringWriter();
        boolean ok = compiler.getTask(
                        diagnostics,
                        null,
                        null,
                        List.of("-classpath", JavaProcess.classpath(), "-d", out.toString(), "-Xlint:all", "-Werror"),
                        null,
                        List.of(file))
                .call();
        assertThat(ok)
                .as(className + " compiles without warnings:\n" + diagnostics)
                .isTrue();
    }

    @Test
    void twoWorkersSetUpAsTheReadmeSaysSurviveALeaseLostMidLoopAndNeverWriteStale(@TempDir Path dir) throws Exception {
        setUpAsTheReadmeSays();
        Path source = dir.resolve("PaymentsWorker.java");
        Files.writeString(source, quickStart());
        String url = local(quickStartUrl());
        assertThat(url).contains("user=billing_app");

        try (Worker a = new Worker(source, url);
                Worker b = new Worker(source, url)) {
            await().atMost(Duration.ofSeconds(60)).until(() -> charges() > 0);
            long refusals = 0;
            for (int loss = 0; loss < 15 && refusals == 0; loss++) {
                long token = highestCharged();
                stopNotifications();
                assertThat(Main.run("release", "payments", "--jdbc-url", login("oncall")))
                        .as("the operator's release")
                        .isZero();
                await().atMost(Duration.ofSeconds(30)).until(() -> highestCharged() > token);
                refusals = a.lines("charge refused: ") + b.lines("charge refused: ");
            }
            assertThat(a.output() + b.output())
                    .as("a worker met the loss in its own fenced write, and went on")
                    .containsPattern("charge refused: (STALE_TOKEN|LEASE_LOST)");
            assertThat(a.alive() && b.alive())
                    .as("both workers are still running")
                    .isTrue();
            long after = charges();
            await().atMost(Duration.ofSeconds(30)).until(() -> charges() > after);

            assertThat(query("SELECT count(*) FROM billing.charges c WHERE EXISTS (SELECT 1 FROM billing.charges"
                            + " e WHERE e.id < c.id AND e.token > c.token)"))
                    .as("charges made under a token after a charge with a higher token")
                    .isEqualTo("0");
            SQLException unfenced = catchThrowableOfType(
                    () -> run("billing_app", "payments", "INSERT INTO billing.charges (token) VALUES (1)"),
                    SQLException.class);
            assertThat((Throwable) unfenced)
                    .as("an unfenced write to the protected table")
                    .isNotNull();
            assertThat(unfenced.getSQLState()).isEqualTo("PL002");

            boolean ended = a.terminate() && b.terminate();
            System.out.println("worker a:\n" + a.output() + "\nworker b:\n" + b.output());
            assertThat(ended).as("SIGTERM ends both").isTrue();
            assertThat(query("SELECT held FROM pglease.lease_status WHERE name = 'payments'"))
                    .as("the lease was released, not left to expire")
                    .isEqualTo("f");
        }
    }

    /** Runs every block of the README's set-up section in order, as the login it names. */
    private static void setUpAsTheReadmeSays() throws SQLException {
        String section =
                readme.substring(readme.indexOf("## Set up on your PostgreSQL"), readme.indexOf("## Quick start"));
        Matcher m = SETUP_BLOCK.matcher(section);
        int sql = 0;
        boolean migrated = false;
        while (m.find()) {
            String body = m.group(3).replaceAll("(?m)^ {3}", "");
            if (m.group(2).equals("sql")) {
                assertThat(m.group(1)).as("the set-up says who runs:\n" + body).isNotNull();
                run(m.group(1).equals("superuser") ? null : m.group(1), "payments", body);
                sql++;
            } else {
                assertThat(body).startsWith("pglease migrate --jdbc-url ");
                Matcher u = URL.matcher(body);
                assertThat(u.find()).isTrue();
                assertThat(Main.run("migrate", "--jdbc-url", local(u.group(1))))
                        .as("pglease migrate as the owner")
                        .isZero();
                migrated = true;
            }
        }
        assertThat(sql).as("SQL blocks in the set-up").isGreaterThanOrEqualTo(3);
        assertThat(migrated).as("the set-up migrates with the command line").isTrue();
    }

    private static String quickStart() {
        Matcher m = QUICK_START.matcher(readme);
        assertThat(m.find()).as("README has the quick-start java block").isTrue();
        return m.group(1);
    }

    /** The URL of the README's command that starts the worker. */
    private static String quickStartUrl() {
        String after = readme.substring(readme.indexOf("<!-- quick-start:end -->"));
        Matcher m = Pattern.compile("```sh\\njava -cp \\S+ PaymentsWorker\\.java \\\\\\n\\s+'([^']+)'\\n```")
                .matcher(after);
        assertThat(m.find()).as("README says how to start the worker").isTrue();
        return m.group(1);
    }

    /** A README URL pointed at the test server (trust authentication: the README's passwords are not checked). */
    private static String local(String readmeUrl) {
        return readmeUrl.replace("//localhost:5432/", "//localhost:" + server.port() + "/");
    }

    private static String login(String user) {
        return "jdbc:postgresql://localhost:" + server.port() + "/payments?user=" + user;
    }

    /** Ends the workers' LISTEN sessions, so that a holder learns of a lost lease from its next fenced write. */
    private static void stopNotifications() throws SQLException {
        run(
                null,
                "payments",
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'billing_app'"
                        + " AND state = 'idle' AND (query = 'SELECT 1' OR query LIKE 'LISTEN%')");
    }

    private static long charges() throws SQLException {
        return Long.parseLong(query("SELECT count(*) FROM billing.charges"));
    }

    private static long highestCharged() throws SQLException {
        return Long.parseLong(query("SELECT coalesce(max(token), 0) FROM billing.charges"));
    }

    private static void run(String user, String database, String sql) throws SQLException {
        try (Connection c = dataSource(user, database).getConnection();
                Statement st = c.createStatement()) {
            st.execute(sql);
        }
    }

    private static String query(String sql) throws SQLException {
        try (Connection c = dataSource(null, "payments").getConnection();
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery(sql)) {
            assertThat(rs.next()).isTrue();
            return rs.getString(1);
        }
    }

    private static PGSimpleDataSource dataSource(String user, String database) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL("jdbc:postgresql://localhost:" + server.port() + "/" + database + "?user="
                + (user == null ? "postgres" : user));
        return ds;
    }

    /** One copy of the worker, started as the README says: {@code java -cp ... PaymentsWorker.java URL}. */
    private static final class Worker implements AutoCloseable {
        private final Process process;
        private final List<String> lines = Collections.synchronizedList(new ArrayList<>());

        Worker(Path source, String url) throws IOException {
            List<String> command = new ArrayList<>(List.of(JavaProcess.javaBinary()));
            command.addAll(JavaProcess.SMALL);
            command.addAll(List.of("-cp", JavaProcess.classpath(), source.toString(), url));
            process = new ProcessBuilder(command).redirectErrorStream(true).start();
            Thread reader = new Thread(
                    () -> {
                        try (BufferedReader r = new BufferedReader(
                                new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                            for (String line; (line = r.readLine()) != null; ) {
                                lines.add(line);
                            }
                        } catch (IOException ended) {
                            // the process is gone
                        }
                    },
                    "quick-start-worker-output");
            reader.setDaemon(true);
            reader.start();
        }

        long lines(String prefix) {
            synchronized (lines) {
                return lines.stream().filter(l -> l.startsWith(prefix)).count();
            }
        }

        String output() {
            synchronized (lines) {
                return String.join("\n", lines);
            }
        }

        boolean alive() {
            return process.isAlive();
        }

        boolean terminate() throws InterruptedException {
            return JavaProcess.terminate(process, 20_000);
        }

        @Override
        public void close() {
            JavaProcess.kill(process);
        }
    }
}
