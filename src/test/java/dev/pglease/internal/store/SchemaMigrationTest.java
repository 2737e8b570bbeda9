package dev.pglease.internal.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import dev.pglease.LeaseException;
import dev.pglease.TestDatabase;
import dev.pglease.internal.sql.SchemaStatements;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A migration is all or nothing: when a later migration fails, none of the migrations of that run stays applied
 * (a new schema gets no table, an existing one stays at its version), and the error says what failed, where, with
 * the server's hint.
 */
@Tag("core")
class SchemaMigrationTest {

    private static final String FAILING = "classpath:dev/pglease/internal/store/failing-migration";
    private static final AtomicInteger SCHEMAS = new AtomicInteger();

    private static String schema() {
        return "mig" + ProcessHandle.current().pid() + "_" + SCHEMAS.incrementAndGet();
    }

    private static int migrate(String schema, String... locations) {
        return SchemaMigration.migrate(
                TestDatabase.dataSource(),
                schema,
                schema + "_candidate",
                schema + "_observer",
                schema + "_operator",
                List.of(locations));
    }

    @Test
    void aFailureInTheLastMigrationOfANewSchemaLeavesNoMigrationApplied() throws Exception {
        String schema = schema();
        LeaseException e =
                catchThrowableOfType(() -> migrate(schema, SchemaMigration.LOCATION, FAILING), LeaseException.class);
        assertThat(e).as("the migration fails").isNotNull();
        assertThat(e.getMessage())
                .contains("planted failure after the shipped migrations", "Hint: this is a test")
                .contains("R__99_planted_failure.sql", "nothing of this migration was applied")
                .doesNotContain("\n");
        try (Connection c = TestDatabase.dataSource().getConnection()) {
            assertThat(new SchemaStatements(schema).exists(c))
                    .as("pglease tables")
                    .isFalse();
            assertThat(relation(c, schema + ".planted_before_failure")).isFalse();
            assertThat(successfulMigrations(c, schema)).isZero();
        }
        assertThat(migrate(schema, SchemaMigration.LOCATION))
                .as("the same schema migrates once the failure is gone")
                .isPositive();
        try (Connection c = TestDatabase.dataSource().getConnection()) {
            assertThat(new SchemaStatements(schema).exists(c)).isTrue();
        }
        TestDatabase.execute("DROP SCHEMA " + schema + " CASCADE");
    }

    @Test
    void aFailedUpgradeLeavesTheSchemaAsItWas() throws Exception {
        String schema = schema();
        migrate(schema, SchemaMigration.LOCATION);
        long before;
        String version;
        try (Connection c = TestDatabase.dataSource().getConnection()) {
            before = successfulMigrations(c, schema);
            version = new SchemaStatements(schema).migratedVersion(c).orElseThrow();
        }
        LeaseException e =
                catchThrowableOfType(() -> migrate(schema, SchemaMigration.LOCATION, FAILING), LeaseException.class);
        assertThat(e).isNotNull();
        try (Connection c = TestDatabase.dataSource().getConnection()) {
            assertThat(successfulMigrations(c, schema)).isEqualTo(before);
            assertThat(new SchemaStatements(schema).migratedVersion(c)).contains(version);
            assertThat(relation(c, schema + ".planted_before_failure")).isFalse();
            assertThat(new SchemaStatements(schema).exists(c)).isTrue();
        }
        TestDatabase.execute("DROP SCHEMA " + schema + " CASCADE");
    }

    private static boolean relation(Connection c, String name) throws Exception {
        try (PreparedStatement ps = c.prepareStatement("SELECT to_regclass(?) IS NOT NULL")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    private static long successfulMigrations(Connection c, String schema) throws Exception {
        if (!relation(c, schema + "." + SchemaStatements.HISTORY_TABLE)) {
            return 0;
        }
        try (PreparedStatement ps = c.prepareStatement(
                        "SELECT count(*) FROM " + schema + "." + SchemaStatements.HISTORY_TABLE + " WHERE success");
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getLong(1);
        }
    }
}
