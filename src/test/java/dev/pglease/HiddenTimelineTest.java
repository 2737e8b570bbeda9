package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.sql.SchemaStatements;
import dev.pglease.internal.store.LeaseStore;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * A server that hides its timeline from the application's role (here: {@code pg_current_wal_lsn()} revoked from
 * PUBLIC in a database of its own, as some managed services do): pglease names the failing function at start and
 * tokens fall back to the plain counter.
 */
class HiddenTimelineTest {

    private static final String SUFFIX = Long.toString(ProcessHandle.current().pid());
    private static final String DATABASE = "hidden_timeline_" + SUFFIX;
    private static final String APP = "hidden_timeline_app_" + SUFFIX;
    private static final String SCHEMA = "hidden";
    private static PGSimpleDataSource owner;
    private static PGSimpleDataSource app;

    @BeforeAll
    static void database() throws SQLException {
        TestDatabase.execute("DROP DATABASE IF EXISTS " + DATABASE);
        TestDatabase.execute("CREATE DATABASE " + DATABASE);
        TestDatabase.execute("DROP ROLE IF EXISTS " + APP);
        TestDatabase.execute("CREATE ROLE " + APP + " LOGIN PASSWORD 'hidden-timeline'");
        String url = TestDatabase.jdbcUrl().replaceFirst("/[^/?]+(\\?|$)", "/" + DATABASE + "$1");
        owner = new PGSimpleDataSource();
        owner.setURL(url);
        try (Connection c = owner.getConnection();
                Statement s = c.createStatement()) {
            s.execute("REVOKE EXECUTE ON FUNCTION pg_current_wal_lsn() FROM PUBLIC");
        }
        PgLease.migrate(owner, SCHEMA);
        try (Connection c = owner.getConnection();
                Statement s = c.createStatement()) {
            s.execute("GRANT " + SCHEMA + "_candidate TO " + APP);
        }
        app = new PGSimpleDataSource();
        app.setURL(url.replaceAll("([?&])(user|password)=[^&]*&?", "$1").replaceAll("[?&]$", ""));
        app.setUser(APP);
        app.setPassword("hidden-timeline");
    }

    @AfterAll
    static void drop() {
        TestDatabase.execute("DROP DATABASE IF EXISTS " + DATABASE + " WITH (FORCE)");
        TestDatabase.execute("DROP ROLE IF EXISTS " + APP);
    }

    @Test
    void theStartUpCheckNamesTheFunctionThatFailed() throws SQLException {
        try (Connection c = app.getConnection()) {
            assertThat(SchemaStatements.timelineUnavailable(c))
                    .hasValueSatisfying(failure ->
                            assertThat(failure).contains("pg_current_wal_lsn").contains("42501"));
        }
        try (Connection c = owner.getConnection()) {
            assertThat(SchemaStatements.timelineUnavailable(c))
                    .as("a superuser still sees it")
                    .isEmpty();
        }
    }

    @Test
    void tokensFallBackToThePlainCounterAndTheCandidateStillWorks() throws SQLException {
        try (Connection c = app.getConnection()) {
            try (Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery("SELECT " + SCHEMA + ".current_term()")) {
                rs.next();
                assertThat(rs.getLong(1)).isEqualTo(1);
            }
            LeaseStatements sql = new LeaseStatements(SCHEMA);
            String name = "hidden-" + System.nanoTime();
            LeaseStore.Acquired first = sql.acquire(c, name, "A", Duration.ofSeconds(30));
            assertThat(first.granted()).isTrue();
            assertThat(first.token()).isEqualTo(1);
            assertThat(sql.release(c, name, "A", 1)).isTrue();
            assertThat(sql.acquire(c, name, "B", Duration.ofSeconds(30)).token())
                    .isEqualTo(2);
        }
    }
}
