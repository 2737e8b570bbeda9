package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.sql.SchemaStatements;
import dev.pglease.internal.store.LeaseStore;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * A server that hides its timeline from the schema's owner (here: {@code pg_current_wal_lsn()} revoked from PUBLIC in a
 * database of its own and the schema owned by a role that is not a superuser, as on some managed services): pglease
 * says so at start, and tokens fall back to the plain counter.
 */
@Tag("core")
class HiddenTimelineTest {

    private static final String SUFFIX = Long.toString(ProcessHandle.current().pid());
    private static final String DATABASE = "hidden_timeline_" + SUFFIX;
    private static final String OWNER = "hidden_timeline_owner_" + SUFFIX;
    private static final String APP = "hidden_timeline_app_" + SUFFIX;
    private static final String SCHEMA = "hidden";
    private static PGSimpleDataSource app;

    @BeforeAll
    static void database() throws SQLException {
        TestDatabase.execute("DROP DATABASE IF EXISTS " + DATABASE);
        TestDatabase.execute("CREATE DATABASE " + DATABASE);
        dropRoles();
        TestDatabase.execute("CREATE ROLE " + OWNER + " LOGIN CREATEROLE PASSWORD 'hidden-timeline'");
        TestDatabase.execute("CREATE ROLE " + APP + " LOGIN PASSWORD 'hidden-timeline'");
        String url = TestDatabase.jdbcUrl().replaceFirst("/[^/?]+(\\?|$)", "/" + DATABASE + "$1");
        PGSimpleDataSource superuser = new PGSimpleDataSource();
        superuser.setURL(url);
        try (Connection c = superuser.getConnection();
                Statement s = c.createStatement()) {
            s.execute("REVOKE EXECUTE ON FUNCTION pg_current_wal_lsn() FROM PUBLIC");
            s.execute("GRANT CREATE ON DATABASE " + DATABASE + " TO " + OWNER);
        }
        String bare = url.replaceAll("([?&])(user|password)=[^&]*&?", "$1").replaceAll("[?&]$", "");
        PGSimpleDataSource owner = new PGSimpleDataSource();
        owner.setURL(bare);
        owner.setUser(OWNER);
        owner.setPassword("hidden-timeline");
        PgLease.migrate(owner, SCHEMA);
        try (Connection c = owner.getConnection();
                Statement s = c.createStatement()) {
            s.execute("GRANT " + SCHEMA + "_candidate TO " + APP);
        }
        app = new PGSimpleDataSource();
        app.setURL(bare);
        app.setUser(APP);
        app.setPassword("hidden-timeline");
    }

    @AfterAll
    static void drop() {
        TestDatabase.execute("DROP DATABASE IF EXISTS " + DATABASE + " WITH (FORCE)");
        dropRoles();
    }

    private static void dropRoles() {
        for (String role :
                new String[] {APP, SCHEMA + "_candidate", SCHEMA + "_observer", SCHEMA + "_operator", OWNER}) {
            TestDatabase.execute("DROP ROLE IF EXISTS " + role);
        }
    }

    @Test
    void theStartUpCheckSaysTheOwnerCanNotReadTheTimeline() throws SQLException {
        try (Connection c = app.getConnection()) {
            assertThat(new SchemaStatements(SCHEMA).hiddenTermSources(c))
                    .hasValueSatisfying(warning ->
                            assertThat(warning).contains("pg_current_wal_lsn").contains("plain counter"));
        }
    }

    @Test
    void tokensFallBackToThePlainCounterAndTheCandidateStillWorks() throws SQLException {
        try (Connection c = app.getConnection()) {
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
