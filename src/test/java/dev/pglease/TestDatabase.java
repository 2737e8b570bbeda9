package dev.pglease;

import dev.pglease.internal.tool.EmbeddedPostgresServer;
import dev.pglease.pgbouncer.PgBouncer;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.concurrent.atomic.AtomicInteger;
import javax.sql.DataSource;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * The PostgreSQL server the tests talk to: the one at {@code PGLEASE_TEST_JDBC_URL} when set, otherwise one
 * embedded server per test JVM. Each test class takes a fresh, migrated schema so tests never see each other's rows.
 */
public final class TestDatabase {

    public static final String URL_VARIABLE = "PGLEASE_TEST_JDBC_URL";
    /**
     * {@code -Dpglease.test.pooler=pgbouncer} (profile {@code pgbouncer}): the embedded server is reached through
     * PgBouncer in {@code pool_mode=transaction}, so the same tests prove the library behind a transaction pooler.
     */
    public static final String POOLER_PROPERTY = "pglease.test.pooler";

    private static final AtomicInteger SCHEMAS = new AtomicInteger();
    private static EmbeddedPostgresServer embedded;
    private static String url;

    private TestDatabase() {}

    /** JDBC URL of the test server (with user, and password if any). */
    public static synchronized String jdbcUrl() {
        if (url == null) {
            String external = System.getenv(URL_VARIABLE);
            if (external != null && !external.isBlank()) {
                url = external;
            } else {
                embedded = EmbeddedPostgresServer.start();
                url = embedded.jdbcUrl();
                String pooler = System.getProperty(POOLER_PROPERTY, "");
                if (pooler.equals("pgbouncer")) {
                    PgBouncer bouncer = PgBouncer.start(embedded.port(), "postgres", "transaction", 10);
                    Runtime.getRuntime().addShutdownHook(new Thread(bouncer::close));
                    url = bouncer.jdbcUrl("postgres");
                } else if (!pooler.isEmpty()) {
                    throw new IllegalArgumentException(POOLER_PROPERTY + " must be pgbouncer or empty, got " + pooler);
                }
            }
        }
        return url;
    }

    /**
     * Whether the tests reach the server through PgBouncer ({@link #POOLER_PROPERTY}). PgBouncer 1.18 refuses the
     * startup parameter {@code options} (session settings given at connect), so tests built on it skip then.
     */
    public static boolean throughPooler() {
        return !System.getProperty(POOLER_PROPERTY, "").isEmpty();
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
