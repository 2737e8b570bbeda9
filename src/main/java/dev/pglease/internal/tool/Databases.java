package dev.pglease.internal.tool;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import com.zaxxer.hikari.pool.HikariPool;
import dev.pglease.internal.util.Secrets;

/** Connection pools for the command-line tools, with fail-fast start-up and errors free of passwords. */
public final class Databases {

    /** Environment variable read when {@code --jdbc-url} is not given. */
    public static final String URL_VARIABLE = "PGLEASE_JDBC_URL";

    private Databases() {}

    /**
     * A small pool for {@code jdbcUrl}. Fails within about five seconds, with a message naming the (redacted) URL,
     * when the database can not be reached.
     */
    public static HikariDataSource pool(String jdbcUrl, int size, String name) {
        if (jdbcUrl == null || jdbcUrl.isBlank()) {
            throw new IllegalArgumentException("no database given: pass --jdbc-url or set " + URL_VARIABLE);
        }
        if (!jdbcUrl.startsWith("jdbc:postgresql:")) {
            throw new IllegalArgumentException("'" + Secrets.redact(jdbcUrl)
                    + "' is not a PostgreSQL JDBC URL: it must start with jdbc:postgresql://");
        }
        HikariConfig config = new HikariConfig();
        config.setJdbcUrl(jdbcUrl);
        config.setPoolName(name);
        config.setMaximumPoolSize(size);
        config.setMinimumIdle(1);
        config.setConnectionTimeout(5_000);
        config.setValidationTimeout(2_000);
        config.setInitializationFailTimeout(1);
        config.addDataSourceProperty("connectTimeout", "5");
        config.addDataSourceProperty("loginTimeout", "5");
        config.addDataSourceProperty("ApplicationName", "pglease-" + name);
        try {
            return new HikariDataSource(config);
        } catch (HikariPool.PoolInitializationException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            throw new IllegalStateException(
                    "can not connect to " + Secrets.redact(jdbcUrl) + ": "
                            + Secrets.redact(String.valueOf(cause.getMessage())),
                    e);
        }
    }
}
