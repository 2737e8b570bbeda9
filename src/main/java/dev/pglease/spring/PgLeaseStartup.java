package dev.pglease.spring;

import dev.pglease.LeaseException;
import dev.pglease.PgLease;
import dev.pglease.internal.sql.SchemaStatements;
import dev.pglease.internal.sql.SqlErrors;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.List;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.jdbc.datasource.DriverManagerDataSource;

/**
 * Start-up of pglease in a Spring application with least privilege: migrating only when asked (as a separate
 * migration login), and start-up failures of {@code PgLease.create} (privileges, a missing or outdated schema)
 * reported once, naming the missing grant or the properties that fix it.
 */
final class PgLeaseStartup {

    private static final Logger LOG = LoggerFactory.getLogger(PgLeaseStartup.class);

    /**
     * Flyway major versions the shipped migrations are tested with: 13 (what pglease is built with), 12 (Spring Boot
     * 4.1's managed version, profile {@code boot-flyway}) and 11 (Spring Boot 4.0's, profile {@code boot40}).
     */
    static final int FLYWAY_MIN_MAJOR = 11;

    static final int FLYWAY_MAX_MAJOR = 13;

    private PgLeaseStartup() {}

    /** Migrates when {@code pglease.migrate=true}; returns the number of migrations applied. */
    static int migrateIfAsked(DataSource application, PgLeaseProperties properties, PgLease.Roles roles) {
        if (!properties.isMigrate()) {
            return 0;
        }
        checkFlyway(flywayVersion());
        PgLeaseProperties.Migration migration = properties.getMigration();
        DataSource target = application;
        if (isSet(migration)) {
            target = dataSource(migration, application);
        } else {
            LOG.warn(
                    "pglease migrates schema {} as the application's own login, which then owns the schema and "
                            + "bypasses its guards; set pglease.migration.username/password to migrate as a separate "
                            + "owner login",
                    properties.getSchema());
        }
        if (!migration.isCreateRoles()) {
            requireRoles(target, roles);
        }
        try {
            return PgLease.migrate(target, properties.getSchema(), roles);
        } catch (LeaseException e) {
            String login = isSet(migration)
                    ? "the login in pglease.migration.username (" + migration.getUsername() + ")"
                    : "the application's own login (spring.datasource.username; pglease.migration.username is unset)";
            throw new LeaseException(
                    e.reason(),
                    e.getMessage() + ". In Spring the schema is migrated at start because pglease.migrate=true, as "
                            + login
                            + (e.reason() == LeaseException.Reason.INSUFFICIENT_PRIVILEGE
                                    ? ", which needs CREATE on the database (or to own schema " + properties.getSchema()
                                            + ")"
                                    : "")
                            + "; or set pglease.migrate=false and have the owner run `pglease migrate --schema "
                            + properties.getSchema() + "`");
        }
    }

    /** Whether a separate login is configured (it has a user name). */
    static boolean isSet(PgLeaseProperties.Login login) {
        return login.getUsername() != null && !login.getUsername().isBlank();
    }

    /** A data source for a separate login, on the application data source's URL unless the login names one. */
    static DataSource dataSource(PgLeaseProperties.Login login, DataSource application) {
        String url = login.getUrl() != null && !login.getUrl().isBlank() ? login.getUrl() : urlOf(application);
        return new DriverManagerDataSource(url, login.getUsername(), login.getPassword());
    }

    private static String urlOf(DataSource dataSource) {
        try (Connection c = dataSource.getConnection()) {
            return c.getMetaData().getURL();
        } catch (SQLException e) {
            throw new LeaseException(
                    LeaseException.Reason.DATABASE_UNAVAILABLE,
                    "could not read the application data source's URL for a separate login (set its url: "
                            + "pglease.migration.url or pglease.actuator.operator.url): " + e.getMessage(),
                    e);
        }
    }

    private static void requireRoles(DataSource dataSource, PgLease.Roles roles) {
        List<String> missing;
        try (Connection c = dataSource.getConnection()) {
            missing = SchemaStatements.missingRoles(c, List.of(roles.candidate(), roles.observer(), roles.operator()));
        } catch (SQLException e) {
            throw new LeaseException(
                    LeaseException.Reason.DATABASE_UNAVAILABLE,
                    "could not check the pglease " + "roles before migrating: " + e.getMessage(),
                    e);
        }
        if (!missing.isEmpty()) {
            StringBuilder create = new StringBuilder();
            missing.forEach(r -> create.append("CREATE ROLE ").append(r).append(" NOLOGIN; "));
            throw new LeaseException(
                    LeaseException.Reason.SCHEMA_MISSING,
                    "the pglease role(s) " + missing
                            + " do not exist and pglease.migration.create-roles is false: create them ("
                            + create.toString().strip() + "), name existing roles in pglease.roles.candidate/observer/"
                            + "operator, or set pglease.migration.create-roles=true");
        }
    }

    /** The version of the Flyway on the classpath, from its own version resource. */
    static String flywayVersion() {
        try (InputStream in = org.flywaydb.core.Flyway.class
                .getClassLoader()
                .getResourceAsStream("org/flywaydb/core/internal/version.txt")) {
            return in == null ? "unknown" : new String(in.readAllBytes(), StandardCharsets.UTF_8).strip();
        } catch (IOException e) {
            return "unknown";
        }
    }

    /**
     * Refuses to migrate with a Flyway outside the tested range (Spring Boot's dependency management picks its own,
     * which may be older or newer than the one pglease is built with).
     */
    static void checkFlyway(String version) {
        int major;
        try {
            major = Integer.parseInt(version.split("\\.")[0]);
        } catch (NumberFormatException e) {
            major = -1;
        }
        if (major < FLYWAY_MIN_MAJOR || major > FLYWAY_MAX_MAJOR) {
            throw new IllegalStateException("pglease.migrate=true needs Flyway " + FLYWAY_MIN_MAJOR + ".x to "
                    + FLYWAY_MAX_MAJOR + ".x (the versions its migrations are tested with) but the classpath has "
                    + "Flyway " + version + ": set the Maven property flyway.version (Gradle: ext['flyway.version'])"
                    + " to a version in that range, or migrate outside the application (`pglease migrate`) and "
                    + "leave pglease.migrate=false");
        }
    }

    /** Whether the login is a superuser or a member of the schema's owner: then no guard trigger applies to it. */
    static boolean bypassesGuards(DataSource dataSource, String schema) {
        try (Connection c = dataSource.getConnection()) {
            return new SchemaStatements(schema).bypassesGuards(c);
        } catch (SQLException e) {
            return false;
        }
    }

    /** Where the core's advice on migrating starts in its SCHEMA_MISSING messages (advice for plain Java). */
    private static final List<String> CORE_MIGRATE_ADVICE =
            List.of(": run PgLease.migrate(", ": have the schema owner migrate it");

    /**
     * A failure of {@code PgLease.create}, told in Spring terms: the same reason, what is wrong, and the properties
     * that decide which login is used or when the schema is migrated, instead of the plain-Java advice (which would
     * have the application's own login, {@code spring.datasource.username}, migrate and own the schema). One
     * exception, no cause chain to dig through.
     */
    static LeaseException inSpringTerms(LeaseException e, String schema) {
        if (e.reason() == LeaseException.Reason.SCHEMA_MISSING) {
            String message = e.getMessage();
            for (String advice : CORE_MIGRATE_ADVICE) {
                int at = message.indexOf(advice);
                if (at >= 0) {
                    return new LeaseException(
                            e.reason(),
                            message.substring(0, at) + ": have the schema owner migrate it, outside the "
                                    + "application with `pglease migrate --schema " + schema + "` and the owner's "
                                    + "credentials, or at start with pglease.migrate=true and the owner login in "
                                    + "pglease.migration.username and pglease.migration.password; the application's "
                                    + "own login (spring.datasource.username) only needs to be a member of the "
                                    + "candidate role");
                }
            }
            return new LeaseException(
                    e.reason(),
                    message + ". In Spring the schema is migrated at start only with pglease.migrate=true, as the "
                            + "login in pglease.migration.username/password");
        }
        if (e.reason() == LeaseException.Reason.INSUFFICIENT_PRIVILEGE) {
            return new LeaseException(
                    e.reason(),
                    e.getMessage() + ". In Spring the login is "
                            + "spring.datasource.username; the schema is migrated (and roles created) only by the login in "
                            + "pglease.migration.username with pglease.migrate=true");
        }
        Throwable cause = e.getCause();
        if (e.reason() == LeaseException.Reason.DATABASE_UNAVAILABLE
                && cause instanceof SQLException s
                && SqlErrors.insufficientPrivilege(s)) {
            return new LeaseException(
                    LeaseException.Reason.INSUFFICIENT_PRIVILEGE,
                    "the application's login ("
                            + "spring.datasource.username) may not connect: " + s.getMessage() + "; GRANT CONNECT ON "
                            + "DATABASE to it");
        }
        return e;
    }
}
