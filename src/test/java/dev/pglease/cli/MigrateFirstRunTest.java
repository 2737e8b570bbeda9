package dev.pglease.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.pglease.TestDatabase;
import dev.pglease.internal.sql.SchemaStatements;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The errors of a first {@code pglease migrate} with too few rights name their cause, and what to grant, within two
 * seconds and without retries; and a failed migration leaves nothing of itself applied.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class MigrateFirstRunTest {

    private static final String SUFFIX = "_" + ProcessHandle.current().pid();
    private static final String NO_CREATE = "mig_nocreate" + SUFFIX;
    private static final String NO_CREATEROLE = "mig_norole" + SUFFIX;

    record Result(int code, String out, String err, long millis) {}

    @BeforeAll
    static void logins() {
        assumeTrue(TestDatabase.isEmbedded(), "creates login roles without passwords (trust authentication)");
        TestDatabase.execute("CREATE ROLE " + NO_CREATE + " LOGIN");
        TestDatabase.execute("CREATE ROLE " + NO_CREATEROLE + " LOGIN");
        TestDatabase.execute("GRANT CREATE ON DATABASE postgres TO " + NO_CREATEROLE);
    }

    @AfterAll
    static void dropLogins() {
        if (TestDatabase.isEmbedded()) {
            TestDatabase.execute("REVOKE CREATE ON DATABASE postgres FROM " + NO_CREATEROLE);
            TestDatabase.execute("DROP OWNED BY " + NO_CREATEROLE);
            TestDatabase.execute("DROP ROLE " + NO_CREATE);
            TestDatabase.execute("DROP ROLE " + NO_CREATEROLE);
        }
    }

    private static String url(String user) {
        return TestDatabase.jdbcUrl().replaceFirst("user=[^&]*", "user=" + user);
    }

    private static Result migrate(String user, String schema) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        picocli.CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        long start = System.nanoTime();
        int code = cl.execute("migrate", "--jdbc-url", url(user), "--schema", schema);
        return new Result(code, out.toString(), err.toString(), (System.nanoTime() - start) / 1_000_000);
    }

    @Test
    void anOwnerWithoutCreateOnTheDatabaseIsToldSoAndWhatToGrantWithinTwoSeconds() {
        String schema = "mig_nocreate" + SUFFIX;
        Result r = migrate(NO_CREATE, schema);
        assertThat(r.code()).as(r.err()).isEqualTo(ExitCodes.FAILED);
        assertThat(r.err())
                .contains("permission denied for database postgres")
                .contains("GRANT CREATE ON DATABASE postgres TO " + NO_CREATE)
                .contains("CREATE SCHEMA " + schema + " AUTHORIZATION " + NO_CREATE);
        assertThat(r.millis()).as("time to the error (no retries)").isLessThan(2_000);
    }

    @Test
    void rolesTheOwnerMayNotCreateAreNamedWithTheHintAndNothingIsApplied() throws Exception {
        String schema = "mig_norole" + SUFFIX;
        Result r = migrate(NO_CREATEROLE, schema);
        assertThat(r.code()).as(r.err()).isEqualTo(ExitCodes.FAILED);
        assertThat(r.err())
                .contains(schema + "_candidate (the candidate role of schema " + schema + ")")
                .contains("does not exist and " + NO_CREATEROLE + " may not create it")
                .contains("role " + schema + "_operator (the operator role of schema " + schema + ")")
                .contains("Create them first")
                .contains(
                        "CREATE ROLE " + schema + "_candidate NOLOGIN;", "CREATE ROLE " + schema + "_operator NOLOGIN;")
                .contains("--candidate-role");
        assertThat(r.millis()).as("time to the error (no retries)").isLessThan(2_000);
        try (Connection c = TestDatabase.dataSource().getConnection()) {
            assertThat(new SchemaStatements(schema).exists(c))
                    .as("pglease tables in " + schema)
                    .isFalse();
            assertThat(appliedMigrations(c, schema))
                    .as("migrations recorded as applied")
                    .isZero();
        }

        // as the hint says: the roles made by someone who may, the owner needs no CREATEROLE
        for (String kind : List.of("candidate", "observer", "operator")) {
            TestDatabase.execute("CREATE ROLE " + schema + "_" + kind + " NOLOGIN");
        }
        Result again = migrate(NO_CREATEROLE, schema);
        assertThat(again.code()).as(again.err()).isZero();
        assertThat(again.out()).contains("migrated schema " + schema);
        TestDatabase.execute("DROP SCHEMA " + schema + " CASCADE");
        for (String kind : List.of("candidate", "observer", "operator")) {
            TestDatabase.execute("DROP ROLE " + schema + "_" + kind);
        }
    }

    @Test
    void existingRolesOfOtherNamesCanBeNamed() throws Exception {
        String schema = "mig_named" + SUFFIX;
        String prefix = "named" + SUFFIX;
        for (String kind : List.of("candidate", "observer", "operator")) {
            TestDatabase.execute("CREATE ROLE " + prefix + "_" + kind + " NOLOGIN");
        }
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        picocli.CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(
                "migrate",
                "--jdbc-url",
                url(NO_CREATEROLE),
                "--schema",
                schema,
                "--candidate-role",
                prefix + "_candidate",
                "--observer-role",
                prefix + "_observer",
                "--operator-role",
                prefix + "_operator");
        assertThat(code).as(err.toString()).isZero();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement(
                        "SELECT has_table_privilege(?, ?, 'SELECT'), has_schema_privilege(?, ?, 'USAGE')")) {
            ps.setString(1, prefix + "_observer");
            ps.setString(2, schema + ".leases");
            ps.setString(3, prefix + "_candidate");
            ps.setString(4, schema);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                assertThat(rs.getBoolean(1))
                        .as("the observer role named may read the leases")
                        .isTrue();
                assertThat(rs.getBoolean(2))
                        .as("the candidate role named may use the schema")
                        .isTrue();
            }
        }
        TestDatabase.execute("DROP SCHEMA " + schema + " CASCADE");
        for (String kind : List.of("candidate", "observer", "operator")) {
            TestDatabase.execute("DROP OWNED BY " + prefix + "_" + kind);
            TestDatabase.execute("DROP ROLE " + prefix + "_" + kind);
        }
    }

    @Test
    void aLoginThatDoesNotOwnTheSchemaIsToldToMigrateAsItsOwner() {
        String schema = TestDatabase.freshSchema();
        Result r = migrate(NO_CREATEROLE, schema);
        assertThat(r.code()).as(r.err()).isEqualTo(ExitCodes.FAILED);
        assertThat(r.err())
                .contains("schema " + schema + " belongs to role postgres", "migrate as postgres")
                .contains("never an application's login");
        assertThat(r.millis()).as("time to the error").isLessThan(2_000);
    }

    static long appliedMigrations(Connection c, String schema) throws Exception {
        try (PreparedStatement ps = c.prepareStatement("SELECT to_regclass(?) IS NOT NULL")) {
            ps.setString(1, schema + "." + SchemaStatements.HISTORY_TABLE);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                if (!rs.getBoolean(1)) {
                    return 0;
                }
            }
        }
        try (PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM " + schema + "."
                        + SchemaStatements.HISTORY_TABLE + " WHERE success AND type <> 'SCHEMA'");
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getLong(1);
        }
    }
}
