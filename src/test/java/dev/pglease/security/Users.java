package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.TestDatabase;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.HexFormat;
import javax.sql.DataSource;
import org.postgresql.ds.PGSimpleDataSource;

/** Login users for the role tests: each a member of the roles named, connected through its own data source. */
final class Users {

    private Users() {}

    /** Creates a LOGIN user (with a random password) that is a member of {@code roles}, and returns its name. */
    static String create(String name, String... roles) {
        String password = password();
        StringBuilder sql = new StringBuilder("CREATE ROLE ")
                .append(name)
                .append(" LOGIN PASSWORD '")
                .append(password)
                .append("'");
        if (roles.length > 0) {
            sql.append(" IN ROLE ").append(String.join(", ", roles));
        }
        TestDatabase.execute("DROP ROLE IF EXISTS " + name);
        TestDatabase.execute(sql.toString());
        PASSWORDS.put(name, password);
        return name;
    }

    private static final java.util.Map<String, String> PASSWORDS = new java.util.concurrent.ConcurrentHashMap<>();

    /** A data source that logs in as {@code user} (created with {@link #create}). */
    static DataSource as(String user) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL(TestDatabase.jdbcUrl());
        ds.setUser(user);
        ds.setPassword(PASSWORDS.get(user));
        ds.setConnectTimeout(5);
        ds.setLoginTimeout(5);
        return ds;
    }

    /** The test server's JDBC URL, logging in as {@code user} with its password. */
    static String url(String user) {
        String base = TestDatabase.jdbcUrl().replaceAll("([?&])(user|password)=[^&]*&?", "$1");
        base = base.replaceAll("[?&]$", "");
        String sep = base.contains("?") ? "&" : "?";
        return base + sep + "user=" + user + "&password=" + PASSWORDS.get(user);
    }

    static String password() {
        byte[] random = new byte[12];
        new java.security.SecureRandom().nextBytes(random);
        return "pw" + HexFormat.of().formatHex(random);
    }

    /** Runs {@code sql} as {@code user} (auto-commit). */
    static void run(String user, String sql) throws SQLException {
        try (Connection c = as(user).getConnection();
                Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }

    /** Asserts that {@code sql}, run as {@code user}, fails with SQLSTATE 42501 (insufficient_privilege). */
    static SQLException denied(String user, String sql) {
        Throwable t = catchThrowable(() -> run(user, sql));
        assertThat(t).as("%s as %s", sql, user).isInstanceOf(SQLException.class);
        SQLException e = (SQLException) t;
        assertThat(e.getSQLState())
                .as("SQLSTATE of %s as %s: %s", sql, user, e.getMessage())
                .isEqualTo("42501");
        return e;
    }

    /** A single value from a query run as {@code user} ({@code null}: the test superuser). */
    static String query(String user, String sql) throws SQLException {
        try (Connection c = (user == null ? TestDatabase.dataSource() : as(user)).getConnection();
                Statement s = c.createStatement();
                java.sql.ResultSet rs = s.executeQuery(sql)) {
            return rs.next() ? rs.getString(1) : null;
        }
    }
}
