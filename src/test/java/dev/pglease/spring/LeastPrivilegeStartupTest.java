package dev.pglease.spring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.LeaseException;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.internal.sql.SchemaStatements;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.jdbc.autoconfigure.DataSourceAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.core.NestedExceptionUtils;
import org.springframework.jdbc.datasource.DriverManagerDataSource;

/**
 * A Spring application starts as whatever login the DBA handed out, and says at once what is missing: one test per
 * kind of login (plain, candidate member, observer member, schema owner, superuser). Migration is the schema
 * owner's act ({@code pglease.migrate=true} with {@code pglease.migration.*}); the application only checks the
 * schema version, through {@code schema_version()}, never Flyway's history table.
 */
class LeastPrivilegeStartupTest {

    private static final AtomicInteger USERS = new AtomicInteger();

    /** Creates a LOGIN role with {@code options} (e.g. "IN ROLE x"); returns its name, whose password is its name. */
    private static String login(String kind, String options) {
        String name = kind + "_" + ProcessHandle.current().pid() + "_" + USERS.incrementAndGet();
        TestDatabase.execute("CREATE ROLE " + name + " LOGIN PASSWORD '" + name + "' " + options);
        return name;
    }

    private static String url() {
        return TestDatabase.jdbcUrl()
                .replaceAll("([?&])(user|password)=[^&]*", "$1")
                .replaceAll("[?&]+$", "")
                .replaceAll("&&+", "&")
                .replace("?&", "?");
    }

    private static ApplicationContextRunner app(String schema, String user) {
        return new ApplicationContextRunner()
                .withConfiguration(
                        AutoConfigurations.of(DataSourceAutoConfiguration.class, PgLeaseAutoConfiguration.class))
                .withPropertyValues(
                        "spring.datasource.url=" + url(),
                        "spring.datasource.username=" + user,
                        "spring.datasource.password=" + user,
                        "pglease.schema=" + schema,
                        "pglease.election.lease-name=app",
                        "pglease.shedlock.enabled=false");
    }

    private static LeaseException startupFailure(ApplicationContextRunner runner, long[] millis) {
        LeaseException[] failure = new LeaseException[1];
        long start = System.nanoTime();
        runner.run(context -> {
            millis[0] = (System.nanoTime() - start) / 1_000_000;
            assertThat(context).hasFailed();
            Throwable root = NestedExceptionUtils.getMostSpecificCause(context.getStartupFailure());
            assertThat(root).isInstanceOf(LeaseException.class);
            assertThat(root.getCause())
                    .as("one exception, nothing buried beneath it")
                    .isNull();
            failure[0] = (LeaseException) root;
        });
        return failure[0];
    }

    private static void startsAndLeads(ApplicationContextRunner runner) {
        runner.run(context -> {
            assertThat(context).hasNotFailed();
            assertThat(context.getBean(LeaderElection.class).awaitLeadership(Duration.ofSeconds(10)))
                    .isPresent();
        });
    }

    @Test
    void aPlainLoginFailsAtOnceNamingTheRoleToGrant() {
        String schema = TestDatabase.freshSchema();
        String user = login("plain", "");
        startsAndLeads(app(schema, login("warm", "IN ROLE " + schema + "_candidate"))); // JIT warm-up
        long[] millis = new long[1];
        LeaseException e = startupFailure(app(schema, user), millis);
        assertThat(e.reason()).isEqualTo(LeaseException.Reason.INSUFFICIENT_PRIVILEGE);
        assertThat(e.getMessage())
                .contains(
                        "USAGE ON SCHEMA " + schema,
                        "GRANT " + schema + "_candidate TO " + user,
                        "spring.datasource.username");
        // The same start-up step alone (the bean method), on a warm connection path: how long pglease takes to say no.
        PgLeaseProperties properties = new PgLeaseProperties();
        properties.setSchema(schema);
        long start = System.nanoTime();
        Throwable direct = org.assertj.core.api.Assertions.catchThrowable(() -> new PgLeaseAutoConfiguration()
                .pgLease(
                        new DriverManagerDataSource(url(), user, user),
                        properties,
                        new PgLeaseAutoConfiguration.PgLeaseSchema(schema, 0),
                        new org.springframework.beans.factory.support.StaticListableBeanFactory()
                                .getBeanProvider(dev.pglease.LeaseObserver.class)));
        long pgleaseMillis = (System.nanoTime() - start) / 1_000_000;
        assertThat(direct).isInstanceOf(LeaseException.class).hasMessage(e.getMessage());
        System.out.printf(
                "plain login: application context failed after %d ms, pglease's check after %d ms%n",
                millis[0], pgleaseMillis);
        assertThat(pgleaseMillis).as("reported within 1 s, no retry loop").isLessThan(1000);
    }

    @Test
    void aCandidateMemberStartsWithoutReadingFlywaysHistory() throws SQLException {
        String schema = TestDatabase.freshSchema();
        String user = login("cand", "IN ROLE " + schema + "_candidate");
        try (Connection c = new DriverManagerDataSource(url(), user, user).getConnection();
                Statement s = c.createStatement()) {
            s.executeQuery("SELECT 1 FROM " + schema + "." + PgLease.HISTORY_TABLE);
            throw new AssertionError("the candidate may read Flyway's history table: the test would prove nothing");
        } catch (SQLException expected) {
            assertThat(expected.getSQLState()).isEqualTo("42501");
        }
        startsAndLeads(app(schema, user)); // pglease.migrate is false by default
    }

    @Test
    void anObserverMemberFailsNamingTheCandidateRole() {
        String schema = TestDatabase.freshSchema();
        String user = login("obs", "IN ROLE " + schema + "_observer");
        LeaseException e = startupFailure(app(schema, user), new long[1]);
        assertThat(e.reason()).isEqualTo(LeaseException.Reason.INSUFFICIENT_PRIVILEGE);
        assertThat(e.getMessage())
                .contains(
                        "EXECUTE ON FUNCTION " + schema + ".acquire(text, text, bigint, text)",
                        "EXECUTE ON FUNCTION " + schema + ".fence(text, bigint, bigint)",
                        "GRANT " + schema + "_candidate TO " + user)
                .doesNotContain("USAGE");
    }

    @Test
    void theOwnerMigratesWithItsOwnCredentialsAndTheCandidateRuns() {
        String schema = PgLeaseAutoConfigurationTest.uniqueSchema("own");
        String owner = login("owner", "");
        TestDatabase.execute("GRANT CREATE ON DATABASE " + database() + " TO " + owner);
        String candidate = login("cand", "");
        // the roles do not exist and may not be created unless told: refused, naming the property
        LeaseException e = startupFailure(
                app(schema, candidate)
                        .withPropertyValues(
                                "pglease.migrate=true",
                                "pglease.migration.username=" + owner,
                                "pglease.migration.password=" + owner),
                new long[1]);
        assertThat(e.reason()).isEqualTo(LeaseException.Reason.SCHEMA_MISSING);
        assertThat(e.getMessage())
                .contains("CREATE ROLE " + schema + "_candidate NOLOGIN", "pglease.migration.create-roles=true");
        for (String kind : new String[] {"candidate", "observer", "operator"}) {
            TestDatabase.execute("CREATE ROLE " + schema + "_" + kind + " NOLOGIN");
        }
        TestDatabase.execute("GRANT " + schema + "_candidate TO " + candidate);
        startsAndLeads(app(schema, candidate)
                .withPropertyValues(
                        "pglease.migrate=true",
                        "pglease.migration.username=" + owner,
                        "pglease.migration.password=" + owner));
        assertThat(query("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = '" + schema + "'"))
                .as("the migration login owns the schema, not the application")
                .isEqualTo(owner);
        // the owner itself may run the application too, but bypasses the schema's guards (and is told so)
        startsAndLeads(app(schema, owner));
        assertThat(PgLeaseStartup.bypassesGuards(new DriverManagerDataSource(url(), owner, owner), schema))
                .isTrue();
        assertThat(PgLeaseStartup.bypassesGuards(new DriverManagerDataSource(url(), candidate, candidate), schema))
                .isFalse();
    }

    @Test
    void aMigrationLoginWithoutCreateOnTheDatabaseIsToldWhichLoginAndWhatItNeeds() {
        String schema = PgLeaseAutoConfigurationTest.uniqueSchema("nocreate");
        String owner = login("owner", "");
        for (String kind : new String[] {"candidate", "observer", "operator"}) {
            TestDatabase.execute("CREATE ROLE " + schema + "_" + kind + " NOLOGIN");
        }
        String candidate = login("cand", "IN ROLE " + schema + "_candidate");
        LeaseException e = startupFailure(
                app(schema, candidate)
                        .withPropertyValues(
                                "pglease.migrate=true",
                                "pglease.migration.username=" + owner,
                                "pglease.migration.password=" + owner),
                new long[1]);
        assertThat(e.reason()).isEqualTo(LeaseException.Reason.INSUFFICIENT_PRIVILEGE);
        assertThat(e.getMessage())
                .contains(
                        "pglease.migrate=true",
                        "pglease.migration.username (" + owner + ")",
                        "CREATE on the database",
                        "`pglease migrate --schema " + schema + "`");
    }

    @Test
    void aSuperuserStartsAndIsToldItBypassesTheGuards() {
        String schema = TestDatabase.freshSchema();
        String superuser = login("super", "SUPERUSER");
        startsAndLeads(app(schema, superuser));
        assertThat(PgLeaseStartup.bypassesGuards(new DriverManagerDataSource(url(), superuser, superuser), schema))
                .isTrue();
    }

    @Test
    void aSchemaOlderThanTheLibraryIsRefusedWithHowToMigrate() {
        String schema = TestDatabase.freshSchema();
        TestDatabase.execute("DROP FUNCTION " + schema + ".schema_version()");
        String user = login("cand", "IN ROLE " + schema + "_candidate");
        LeaseException e = startupFailure(app(schema, user), new long[1]);
        assertThat(e.reason()).isEqualTo(LeaseException.Reason.SCHEMA_MISSING);
        assertThat(e.getMessage())
                .contains("older than version " + SchemaStatements.SCHEMA_VERSION, "pglease.migration.username");
    }

    @Test
    void migratingAcceptsTheTestedFlywayMajorsAndRefusesOthersNamingVersionAndRange() {
        // the build's (or the boot-flyway/boot40 profile's) Flyway is the one on the classpath, and it passes
        assertThat(PgLeaseStartup.flywayVersion())
                .isEqualTo(System.getProperty("pglease.flywayVersion", PgLeaseStartup.flywayVersion()));
        PgLeaseStartup.checkFlyway(PgLeaseStartup.flywayVersion());
        for (String tested : new String[] {"11.14.1", "12.4.0", "13.12.1"}) {
            PgLeaseStartup.checkFlyway(tested);
        }
        for (String outside : new String[] {"10.22.0", "14.0.0", "unknown"}) {
            assertThat(org.assertj.core.api.Assertions.catchThrowable(() -> PgLeaseStartup.checkFlyway(outside)))
                    .isInstanceOf(IllegalStateException.class)
                    .hasMessageContaining("classpath has Flyway " + outside)
                    .hasMessageContaining("Flyway 11.x to 13.x")
                    .hasMessageContaining("flyway.version");
        }
    }

    private static String database() {
        return query("SELECT current_database()");
    }

    private static String query(String sql) {
        return new org.springframework.jdbc.core.JdbcTemplate(TestDatabase.dataSource())
                .queryForObject(sql, String.class);
    }
}
