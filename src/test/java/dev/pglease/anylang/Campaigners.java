package dev.pglease.anylang;

import dev.pglease.TestDatabase;
import dev.pglease.fault.kit.Procs;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.sql.DataSource;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * The campaigners in other languages (the Python one of docs/any-language.md and the psql one), how to run them on
 * this machine, and the database set-up they need: logins in the candidate role and a protected counter.
 */
final class Campaigners {

    static final Path PYTHON_SCRIPT = Path.of("src/test/resources/dev/pglease/anylang/campaigner.py");
    static final Path SHELL_SCRIPT = Path.of("src/test/resources/dev/pglease/anylang/campaigner.sh");
    static final String PYTHON_REQUIREMENT =
            "python3 with Debian's python3-psycopg2 (apt-get install python3-psycopg2)";
    static final String PSQL_REQUIREMENT = "psql (postgresql-client), bash 5 and coreutils timeout";

    private static final Pattern JDBC_URL =
            Pattern.compile("jdbc:postgresql://([^/:?,\\[\\]]+)(?::(\\d+))?/([^?]*)(?:\\?.*)?");

    private Campaigners() {}

    /** {@code python3 campaigner.py}, with an interpreter that imports psycopg2 (Debian's first), if there is one. */
    static Optional<List<String>> python() {
        for (String interpreter : List.of("/usr/bin/python3", "python3")) {
            if (Procs.tryRun(Duration.ofSeconds(20), interpreter, "-c", "import psycopg2")
                            .code()
                    == 0) {
                return Optional.of(
                        List.of(interpreter, PYTHON_SCRIPT.toAbsolutePath().toString()));
            }
        }
        return Optional.empty();
    }

    /** {@code bash campaigner.sh}, if psql, bash 5 and timeout are here. */
    static Optional<List<String>> psql() {
        boolean available = Procs.tryRun(Duration.ofSeconds(20), "psql", "--version")
                                .code()
                        == 0
                && Procs.tryRun(Duration.ofSeconds(20), "bash", "-c", "(( BASH_VERSINFO[0] >= 5 ))")
                                .code()
                        == 0
                && Procs.tryRun(Duration.ofSeconds(20), "timeout", "--version").code() == 0
                && Files.isReadable(Path.of("/proc/uptime"));
        return available
                ? Optional.of(List.of("bash", SHELL_SCRIPT.toAbsolutePath().toString()))
                : Optional.empty();
    }

    /** The libpq connection string of the test server for {@code user} (its password goes in PGPASSWORD). */
    static String conninfo(String user) {
        Matcher m = JDBC_URL.matcher(TestDatabase.jdbcUrl());
        if (!m.matches()) {
            throw new IllegalStateException("the campaigners need a single-host test server URL of the form "
                    + "jdbc:postgresql://host[:port]/database[?...]");
        }
        String port = m.group(2) == null ? "5432" : m.group(2);
        String database = m.group(3).isEmpty() ? "postgres" : m.group(3);
        return "host=" + m.group(1) + " port=" + port + " dbname=" + value(database) + " user=" + value(user)
                + " connect_timeout=5";
    }

    private static String value(String v) {
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'";
    }

    /** A login with a random password, member of the candidate role of {@code schema}. */
    static Login login(String schema, String suffix) {
        String name = schema + "_" + suffix;
        byte[] random = new byte[12];
        new java.security.SecureRandom().nextBytes(random);
        String password = "pw" + java.util.HexFormat.of().formatHex(random);
        TestDatabase.execute("DROP ROLE IF EXISTS " + name);
        TestDatabase.execute(
                "CREATE ROLE " + name + " LOGIN PASSWORD '" + password + "' IN ROLE " + schema + "_candidate");
        return new Login(name, password);
    }

    /**
     * Creates the counter the campaigners write with {@code --work fenced-counter} in a schema of its own,
     * {@code <schema>_<suffix>}, owned by the test's superuser, writable by the candidate role, and protected by
     * {@code lease}. Returns the work schema.
     */
    static String protectedCounter(String schema, String suffix, String lease) {
        String work = schema + "_" + suffix;
        for (String sql : List.of(
                "CREATE SCHEMA " + work,
                "CREATE TABLE " + work + ".fenced_counter (name text PRIMARY KEY, value bigint NOT NULL, "
                        + "token bigint NOT NULL)",
                "CREATE TABLE " + work + ".fenced_counter_log (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                        + "name text NOT NULL, token bigint NOT NULL, holder text NOT NULL, value bigint NOT NULL, "
                        + "at timestamptz NOT NULL DEFAULT clock_timestamp())",
                "GRANT USAGE ON SCHEMA " + work + " TO " + schema + "_candidate",
                "GRANT SELECT, INSERT, UPDATE ON " + work + ".fenced_counter, " + work + ".fenced_counter_log TO "
                        + schema + "_candidate",
                "SELECT " + schema + ".protect('" + work + ".fenced_counter', '" + lease + "')",
                "SELECT " + schema + ".protect('" + work + ".fenced_counter_log', '" + lease + "')")) {
            TestDatabase.execute(sql);
        }
        return work;
    }

    /** A login user of the test server. */
    record Login(String name, String password) {

        String conninfo() {
            return Campaigners.conninfo(name);
        }

        DataSource dataSource() {
            PGSimpleDataSource ds = new PGSimpleDataSource();
            ds.setURL(TestDatabase.jdbcUrl());
            ds.setUser(name);
            ds.setPassword(password);
            ds.setConnectTimeout(5);
            ds.setLoginTimeout(5);
            return ds;
        }

        /** Runs {@code sql} in one auto-commit statement as this login. */
        void execute(String sql) throws SQLException {
            try (Connection c = dataSource().getConnection();
                    Statement s = c.createStatement()) {
                s.execute(sql);
            }
        }

        @Override
        public String toString() {
            return name;
        }
    }
}
