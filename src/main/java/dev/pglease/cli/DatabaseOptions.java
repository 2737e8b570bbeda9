package dev.pglease.cli;

import dev.pglease.internal.sql.SchemaStatements;
import dev.pglease.internal.sql.SqlErrors;
import dev.pglease.internal.tool.Databases;
import dev.pglease.internal.util.Secrets;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Properties;
import java.util.regex.Pattern;
import javax.sql.DataSource;
import org.postgresql.Driver;
import org.postgresql.ds.PGSimpleDataSource;
import picocli.CommandLine.Option;

/** {@code --jdbc-url} and {@code --schema}, shared by every operator command, and the checks behind them. */
public final class DatabaseOptions {

    private static final Pattern SCHEMA = Pattern.compile("[a-z_][a-z0-9_]{0,47}");

    @Option(
            names = "--jdbc-url",
            paramLabel = "URL",
            defaultValue = "${env:PGLEASE_JDBC_URL}",
            description = {
                "PostgreSQL JDBC URL, e.g. jdbc:postgresql://db:5432/app?user=ops&password=...",
                "Default: the environment variable PGLEASE_JDBC_URL."
            })
    String jdbcUrl;

    @Option(
            names = "--schema",
            paramLabel = "SCHEMA",
            defaultValue = "pglease",
            description = "Schema that holds the pglease tables (default: ${DEFAULT-VALUE}).")
    String schema;

    /** The validated schema name (it is spliced into SQL text and a channel name). */
    String schema() throws CliFailure {
        if (schema == null || !SCHEMA.matcher(schema).matches() || schema.startsWith("pg_")) {
            throw new CliFailure(
                    ExitCodes.USAGE,
                    "--schema '" + schema + "' is not a valid schema name: use 1 to 48 "
                            + "characters a-z, 0-9 and _, starting with a letter or _ (not pg_)");
        }
        return schema;
    }

    /** The URL with any password masked, for messages. */
    String redactedUrl() {
        return Secrets.redact(jdbcUrl);
    }

    private String url() throws CliFailure {
        if (jdbcUrl == null || jdbcUrl.isBlank()) {
            throw new CliFailure(
                    ExitCodes.USAGE, "no database given: pass --jdbc-url or set " + Databases.URL_VARIABLE);
        }
        if (!jdbcUrl.startsWith("jdbc:postgresql:")) {
            throw new CliFailure(
                    ExitCodes.USAGE,
                    "'" + redactedUrl() + "' is not a PostgreSQL JDBC URL: it must start with jdbc:postgresql://");
        }
        return jdbcUrl;
    }

    /** Opens one connection (5 s connect and login timeouts); exit code 3 with a one-line reason when it fails. */
    Connection connect() throws CliFailure {
        String url = url();
        Properties props = new Properties();
        props.setProperty("connectTimeout", "5");
        props.setProperty("loginTimeout", "5");
        props.setProperty("socketTimeout", "0");
        props.setProperty("ApplicationName", "pglease-cli");
        try {
            Connection c = new Driver().connect(url, props);
            if (c == null) {
                throw new CliFailure(ExitCodes.USAGE, "'" + redactedUrl() + "' is not a valid PostgreSQL JDBC URL");
            }
            return c;
        } catch (SQLException e) {
            throw unreachable(e);
        }
    }

    /** A non-pooling data source for the URL (for Flyway), after checking the URL. */
    DataSource dataSource() throws CliFailure {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        try {
            ds.setURL(url());
        } catch (IllegalArgumentException e) {
            throw new CliFailure(ExitCodes.USAGE, "'" + redactedUrl() + "' is not a valid PostgreSQL JDBC URL");
        }
        ds.setConnectTimeout(5);
        ds.setLoginTimeout(5);
        ds.setApplicationName("pglease-cli");
        return ds;
    }

    CliFailure unreachable(SQLException e) {
        // the URL is followed by a space: a password parameter at its end stays masked by a second redaction
        return new CliFailure(
                ExitCodes.DATABASE_UNREACHABLE,
                "can not connect to " + redactedUrl() + " (" + oneLine(e.getMessage()) + ")",
                e);
    }

    /** Exit code 4 unless the schema has the pglease tables. */
    void requireSchema(Connection c) throws CliFailure, SQLException {
        String s = schema();
        if (!new SchemaStatements(s).existsForOperators(c)) {
            throw new CliFailure(
                    ExitCodes.SCHEMA_MISSING,
                    "schema " + s + " has no pglease tables (database " + redactedUrl()
                            + "): run `pglease migrate --schema " + s + "` first, or pass the right --schema");
        }
    }

    /** A failure for an SQL error during a command: exit 3 for connection errors, 1 otherwise. */
    CliFailure failure(String what, SQLException e) {
        String state = e.getSQLState();
        if (SqlErrors.connectionFailure(e)) {
            return new CliFailure(
                    ExitCodes.DATABASE_UNREACHABLE,
                    what + ": lost the connection to " + redactedUrl() + " (" + oneLine(e.getMessage()) + ")",
                    e);
        }
        if (SqlErrors.insufficientPrivilege(e)) {
            return new CliFailure(ExitCodes.FAILED, what + ": permission denied: " + oneLine(e.getMessage()), e);
        }
        return new CliFailure(
                ExitCodes.FAILED,
                what + ": " + oneLine(e.getMessage()) + (state == null ? "" : " (SQLState " + state + ")"),
                e);
    }

    /** First line of a message, with passwords masked. */
    static String oneLine(String message) {
        String m = Secrets.redact(String.valueOf(message)).strip();
        int nl = m.indexOf('\n');
        return (nl < 0 ? m : m.substring(0, nl)).strip();
    }
}
