package dev.pglease;

import dev.pglease.internal.tool.EmbeddedPostgresServer;
import dev.pglease.pgbouncer.PgBouncer;
import dev.pglease.testkit.Lane;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import javax.sql.DataSource;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * The PostgreSQL server the tests talk to: the one at {@code PGLEASE_TEST_JDBC_URL} when set, otherwise one
 * embedded server per test JVM. Each test class takes a fresh, migrated schema so tests never see each other's rows.
 */
public final class TestDatabase {

    public static final String URL_VARIABLE = "PGLEASE_TEST_JDBC_URL";

    private static final AtomicInteger SCHEMAS = new AtomicInteger();
    private static EmbeddedPostgresServer embedded;
    private static PgBouncer bouncer;
    private static String url;

    private TestDatabase() {}

    /**
     * JDBC URL of the test server (with user, and password if any). In a pooler lane ({@link Lane#pooler()}, profiles
     * {@code pgbouncer} and {@code pgbouncer-session}) the embedded server is reached through PgBouncer in that pool
     * mode, so the same tests prove the library behind the pooler.
     */
    public static synchronized String jdbcUrl() {
        if (url == null) {
            String external = System.getenv(URL_VARIABLE);
            if (external != null && !external.isBlank()) {
                url = external;
            } else {
                Lane pooler = Lane.pooler();
                if (pooler != null) {
                    Required.assume(PgBouncer.installed(), "PgBouncer (" + PgBouncer.BINARY + ", lane " + pooler + ")");
                }
                embedded = EmbeddedPostgresServer.start();
                url = embedded.jdbcUrl();
                if (pooler != null) {
                    // session pooling ties a server connection to each client connection for its lifetime
                    int poolSize = pooler == Lane.PGBOUNCER_SESSION ? 120 : 10;
                    bouncer = PgBouncer.start(embedded.port(), "postgres", pooler.poolMode(), poolSize);
                    Runtime.getRuntime().addShutdownHook(new Thread(bouncer::close));
                    url = bouncer.jdbcUrl("postgres");
                }
            }
        }
        return url;
    }

    /**
     * Whether the tests reach the server through PgBouncer (a pooler lane, {@link Lane#pooler()}). PgBouncer 1.18
     * refuses the startup parameter {@code options} (session settings given at connect), so tests built on it declare
     * the pooler lanes out ({@link dev.pglease.testkit.NotInLane}).
     */
    public static boolean throughPooler() {
        return Lane.pooler() != null;
    }

    /** The PgBouncer in front of the embedded server in a pooler lane (for its admin console), else empty. */
    public static synchronized Optional<PgBouncer> pooler() {
        jdbcUrl();
        return Optional.ofNullable(bouncer);
    }

    /** Whether the tests run against the embedded server (which they may stop, reconfigure or crash). */
    public static boolean isEmbedded() {
        jdbcUrl();
        return embedded != null;
    }

    /** A new non-pooling data source for the test server. */
    public static DataSource dataSource() {
        return dataSource("");
    }

    /** A new data source with extra URL parameters, e.g. {@code options=-c%20TimeZone=Asia/Kolkata}. */
    public static DataSource dataSource(String extraParameters) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        String base = jdbcUrl();
        String sep = base.contains("?") ? "&" : "?";
        ds.setURL(extraParameters.isEmpty() ? base : base + sep + extraParameters);
        ds.setConnectTimeout(5);
        ds.setLoginTimeout(5);
        return ds;
    }

    /** Creates and migrates a schema no other test uses, and returns its name. */
    public static String freshSchema() {
        String schema = "t" + ProcessHandle.current().pid() + "_" + SCHEMAS.incrementAndGet();
        PgLease.migrate(dataSource(), schema);
        return schema;
    }

    /** Runs one SQL statement on a new connection. */
    public static void execute(String sql) {
        try (Connection c = dataSource().getConnection();
                Statement s = c.createStatement()) {
            s.execute(sql);
        } catch (SQLException e) {
            throw new IllegalStateException(sql + ": " + e.getMessage(), e);
        }
    }
}
