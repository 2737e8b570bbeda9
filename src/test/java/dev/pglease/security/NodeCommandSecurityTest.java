package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.cli.Main;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The node command with hostile arguments and with passwords in its database URL: names stored verbatim or refused
 * with the rule, passwords printed nowhere, TLS options passed to the driver as given.
 */
@Tag("security")
class NodeCommandSecurityTest {

    static final String SECRET = "N0de-s3cret-" + Long.toHexString(System.nanoTime());
    private static String schema;
    private static String candidate;

    @BeforeAll
    static void setUp() {
        schema = TestDatabase.freshSchema();
        candidate =
                Users.create(schema + "_node", PgLease.Roles.defaultsFor(schema).candidate());
    }

    /** Unicode arguments survive only when the JVMs encode and decode argv as UTF-8. */
    static boolean utf8Argv() {
        return "UTF-8".equalsIgnoreCase(System.getProperty("sun.jnu.encoding"));
    }

    @Test
    void hostileArgumentsAreStoredVerbatimAndThePasswordIsPrintedNowhere() throws Exception {
        String lease = "it's a \"lease\"; DROP TABLE leases; -- \\ $$" + (utf8Argv() ? " 🚀 עברית" : "");
        String label = "node's \"label\";" + (utf8Argv() ? " مرحبا" : "");
        String password = Users.url(candidate).replaceAll(".*password=", "");
        try (Node node = Node.start(
                Map.of("LANG", "C.UTF-8"),
                "--jdbc-url",
                Users.url(candidate),
                "--schema",
                schema,
                "--lease",
                lease,
                "--holder-label",
                label,
                "--lease-duration",
                "10s",
                "--renew-deadline",
                "6s",
                "--retry-period",
                "500ms",
                "--trace")) {
            Map<String, Object> started = node.await("started", 20_000);
            Map<String, Object> elected = node.await("elected", 20_000);
            assertThat(started.get("lease")).isEqualTo(lease);
            assertThat((String) started.get("holder")).startsWith(label + "/");
            assertThat(elected.get("lease")).isEqualTo(lease);
            assertThat(elected.get("holder")).isEqualTo(started.get("holder"));
            assertThat(node.terminate(15_000)).as(node.output()).isZero();
            assertThat(node.events()).extracting(e -> e.get("event")).contains("released");
            assertThat(node.output()).doesNotContain(password);
            try (Connection c = TestDatabase.dataSource().getConnection();
                    PreparedStatement ps = c.prepareStatement("SELECT holder, changed_by FROM " + schema
                            + ".lease_events WHERE name = ? AND kind = 'acquired'")) {
                ps.setString(1, lease);
                try (ResultSet rs = ps.executeQuery()) {
                    assertThat(rs.next())
                            .as("the lease is stored under the exact name")
                            .isTrue();
                    assertThat(rs.getString(1)).isEqualTo(started.get("holder"));
                    assertThat(rs.getString(2)).isEqualTo(candidate);
                }
            }
        }
    }

    @Test
    void failingToConnectNeverPrintsThePasswordAndKeepsTheTlsOptions() throws Exception {
        String unreachable = "jdbc:postgresql://127.0.0.1:1/app?user=app&password=" + SECRET
                + "&sslmode=verify-full&sslrootcert=/etc/ssl/db-root.crt&connectTimeout=2";
        String noTls = TestDatabase.jdbcUrl() + (TestDatabase.jdbcUrl().contains("?") ? "&" : "?")
                + "sslmode=require&password=" + SECRET;
        String malformed = "jdbc:postgresql://[db.internal/app?user=app&password=" + SECRET;
        // started together: each is a JVM start-up
        try (Node viaFlag = Node.start(Map.of(), "--jdbc-url", unreachable, "--lease", "x");
                Node viaEnv = Node.start(Map.of("PGLEASE_JDBC_URL", unreachable), "--lease", "x");
                Node tls = Node.start(Map.of(), "--jdbc-url", noTls, "--lease", "x");
                Node bad = Node.start(Map.of(), "--jdbc-url", malformed, "--lease", "x")) {
            for (Node node : List.of(viaFlag, viaEnv)) {
                assertThat(node.waitFor(20_000)).as(node.output()).isEqualTo(1);
                assertThat(node.stderr())
                        .contains("pglease: can not connect to jdbc:postgresql://127.0.0.1:1/app"
                                + "?user=app&password=***&sslmode=verify-full&sslrootcert=/etc/ssl/db-root.crt");
                assertThat(node.output()).doesNotContain(SECRET);
            }
            if (TestDatabase.isEmbedded()) { // a server without TLS: sslmode=require must reach the driver
                assertThat(tls.waitFor(20_000)).as(tls.output()).isEqualTo(1);
                assertThat(tls.stderr()).contains("sslmode=require").contains("SSL");
            }
            assertThat(tls.output()).doesNotContain(SECRET);
            assertThat(bad.waitFor(20_000)).as(bad.output()).isNotZero();
            assertThat(bad.output()).doesNotContain(SECRET);
        }
    }

    @Test
    void hostileNamesInArgumentsAreRefusedWithTheRule() {
        String url = TestDatabase.jdbcUrl();
        String[][] cases = {
            {"--lease", "two\nlines", "lease name \"two\\u000alines\" contains the control character U+000A"},
            {"--lease", "nul\u0000", "contains the control character U+0000"},
            {"--lease", "\u202Eevil", "direction-changing character U+202E"},
            {"--lease", "n".repeat(201), "the maximum is 200"},
            {"--holder-label", "tab\tlabel", "holder label \"tab\\u0009label\" contains the control character"},
            {
                "--schema",
                "pglease; DROP SCHEMA public CASCADE",
                "schema \"pglease; DROP SCHEMA public CASCADE\""
                        + " is not allowed: use 1 to 48 characters a-z, 0-9 and _"
            },
        };
        for (String[] c : cases) {
            java.util.Map<String, String> options =
                    new java.util.LinkedHashMap<>(Map.of("--jdbc-url", url, "--schema", schema, "--lease", "ok"));
            options.put(c[0], c[1]);
            List<String> args = new java.util.ArrayList<>(List.of("node"));
            options.forEach((k, v) -> args.addAll(List.of(k, v)));
            Result r = run(args.toArray(String[]::new));
            assertThat(r.code()).as("%s %s: %s", c[0], c[1], r.output()).isEqualTo(2);
            assertThat(r.output()).as(c[0]).contains("pglease: ").contains(c[2]).doesNotContain("\tat ");
        }
    }

    record Result(int code, String output) {}

    /** Runs the command in this JVM with stdout and stderr captured. */
    static Result run(String... args) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        PrintStream capture = new PrintStream(buffer, true, StandardCharsets.UTF_8);
        System.setOut(capture);
        System.setErr(capture);
        try {
            return new Result(Main.run(args), buffer.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }
}
