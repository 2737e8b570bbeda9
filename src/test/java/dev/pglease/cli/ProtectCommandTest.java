package dev.pglease.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pglease.security.HostileSchema;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * {@code pglease protect} and {@code unprotect}, run by a table's owner (a login in no pglease role), and the
 * protected tables in {@code pglease status}; every refusal says why and what to do instead.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS)
class ProtectCommandTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static HostileSchema h;
    private static String app;
    private static String table;

    record Result(int code, String out, String err) {}

    @BeforeAll
    static void anApplicationTableOwnedByALoginOfItsOwn() throws Exception {
        h = HostileSchema.create();
        app = h.login("app");
        String appSchema = h.schema + "_app";
        HostileSchema.superuser("CREATE SCHEMA " + appSchema + " AUTHORIZATION " + app);
        table = appSchema + ".charges";
        HostileSchema.run(app, "CREATE TABLE " + table + " (id int PRIMARY KEY, amount int NOT NULL)");
        HostileSchema.run(app, "CREATE VIEW " + appSchema + ".charges_view AS SELECT * FROM " + table);
        HostileSchema.run(app, "GRANT USAGE ON SCHEMA " + appSchema + " TO " + h.candA);
        HostileSchema.run(app, "GRANT SELECT, INSERT ON " + table + " TO " + h.candA);
        HostileSchema.run(h.candA, "SELECT * FROM " + h.schema + ".acquire('payments', 'a', 60000)");
    }

    private static Result run(String login, String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.addAll(List.of("--jdbc-url", h.url(login), "--schema", h.schema));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        picocli.CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(all.toArray(String[]::new));
        return new Result(code, out.toString(), err.toString());
    }

    @Test
    void theOwnerProtectsAndUnprotectsAndStatusListsTheTable() throws Exception {
        Result noUsage = run(app, "protect", "--table", table, "--lease", "payments");
        assertThat(noUsage.code()).as(noUsage.err()).isEqualTo(ExitCodes.FAILED);
        assertThat(noUsage.err())
                .contains("may not call " + h.schema + ".protect", h.roles.observer(), "GRANT <role> TO " + app);
        HostileSchema.superuser("GRANT " + h.roles.observer() + " TO " + app);

        Result notOwner = run(h.candA, "protect", "--table", table, "--lease", "payments");
        assertThat(notOwner.code()).as(notOwner.err()).isEqualTo(ExitCodes.FAILED);
        assertThat(notOwner.err()).contains("only the owner of " + table + " (role " + app + ") may protect it");

        Result protectedNow = run(app, "protect", "--table", table, "--lease", "payments");
        assertThat(protectedNow.code()).as(protectedNow.err()).isZero();
        assertThat(protectedNow.out()).contains("protected table " + table + " with lease payments");
        SQLException refused = catchThrowableOfType(
                () -> HostileSchema.run(h.candA, "INSERT INTO " + table + " VALUES (1, 100)"), SQLException.class);
        assertThat((Throwable) refused).as("an unfenced write").isNotNull();
        assertThat(refused.getSQLState()).isEqualTo("PL002");

        Result again = run(app, "protect", "--table", table, "--lease", "payments", "--json");
        assertThat(again.code()).as(again.err()).isZero();
        assertThat(JSON.readValue(again.out(), Map.class))
                .containsEntry("table", table)
                .containsEntry("lease", "payments")
                .containsEntry("action", "protect")
                .containsEntry("changed", false);
        Result other = run(app, "protect", "--table", table, "--lease", "billing");
        assertThat(other.code()).isEqualTo(ExitCodes.FAILED);
        assertThat(other.err())
                .contains(table + " is protected by lease payments already", "pglease unprotect --table " + table);

        Result status = run(h.observer, "status");
        assertThat(status.code()).as(status.err()).isZero();
        assertThat(status.out()).contains("PROTECTED TABLE", "CHECKED PER");
        assertThat(status.out().lines().filter(l -> l.startsWith(table)).findFirst())
                .hasValueSatisfying(l -> assertThat(l).contains("payments", "statement"));
        List<Map<String, Object>> leases =
                JSON.readValue(run(h.observer, "status", "payments", "--json").out(), new TypeReference<>() {});
        assertThat(leases.get(0)).containsEntry("protected_tables", List.of(table));

        Result notOwnerUnprotect = run(h.candA, "unprotect", "--table", table);
        assertThat(notOwnerUnprotect.code()).isEqualTo(ExitCodes.FAILED);
        assertThat(notOwnerUnprotect.err()).contains("only the owner of " + table + " (role " + app + ")");
        Result unprotected = run(app, "unprotect", "--table", table);
        assertThat(unprotected.code()).as(unprotected.err()).isZero();
        assertThat(unprotected.out()).contains("unprotected table " + table, "protected by lease payments");
        HostileSchema.run(h.candA, "INSERT INTO " + table + " VALUES (2, 200)");
        assertThat(run(h.observer, "status").out()).doesNotContain("PROTECTED TABLE");
        Result nothing = run(app, "unprotect", "--table", table, "--json");
        assertThat(nothing.code()).isEqualTo(ExitCodes.FAILED);
        assertThat(nothing.err()).contains(table + " is not protected");
        assertThat(JSON.readValue(nothing.out(), Map.class)).containsEntry("changed", false);
    }

    @Test
    void whatIsNotATableIsRefusedWithItsName() {
        Result missing = run(app, "protect", "--table", h.schema + "_app.no_such", "--lease", "payments");
        assertThat(missing.code()).isEqualTo(ExitCodes.FAILED);
        assertThat(missing.err()).contains("no table named " + h.schema + "_app.no_such");
        Result stranger = run(h.observer, "protect", "--table", table, "--lease", "payments");
        assertThat(stranger.code()).as(stranger.err()).isEqualTo(ExitCodes.FAILED);
        assertThat(stranger.err()).contains("permission denied for schema", "only the table's owner may protect it");
        Result view = run(app, "protect", "--table", h.schema + "_app.charges_view", "--lease", "payments");
        assertThat(view.code()).isEqualTo(ExitCodes.FAILED);
        assertThat(view.err()).contains("is not a table");
        Result badLease = run(app, "protect", "--table", table, "--lease", "pay\u202Eroll");
        assertThat(badLease.code()).isEqualTo(ExitCodes.USAGE);
        assertThat(badLease.err()).contains("--lease", "U+202E").doesNotContain("\u202E");
        StringWriter err = new StringWriter();
        picocli.CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(new StringWriter(), true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(
                "protect", "--table", table, "--lease", "payments", "--jdbc-url", h.url(app), "--schema", "no_such");
        assertThat(code).as(err.toString()).isEqualTo(ExitCodes.SCHEMA_MISSING);
        assertThat(err.toString()).contains("schema no_such does not exist", "pglease migrate");
    }
}
