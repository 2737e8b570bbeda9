package dev.pglease.security;

import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import javax.sql.DataSource;

/**
 * A pglease schema set up the way an attacked deployment is: migrated by a login that is not a superuser but may
 * create roles (the schema's owner), with one login in each role: candidate A (the victim), candidate B (the
 * attacker), an observer, an operator, and a login in no pglease role.
 */
public final class HostileSchema {

    private static final AtomicInteger SCHEMAS = new AtomicInteger();

    public final String schema;
    public final PgLease.Roles roles;
    public final String owner;
    public final String candA;
    public final String candB;
    public final String observer;
    public final String operator;
    public final String nobody;

    private HostileSchema(String schema) {
        this.schema = schema;
        this.roles = PgLease.Roles.defaultsFor(schema);
        this.owner = schema + "_owner";
        this.candA = schema + "_a";
        this.candB = schema + "_b";
        this.observer = schema + "_obs";
        this.operator = schema + "_ops";
        this.nobody = schema + "_none";
    }

    /** Creates the owner, migrates a fresh schema as that owner, and creates the five logins. */
    public static HostileSchema create() {
        HostileSchema h = new HostileSchema("h" + ProcessHandle.current().pid() + "_" + SCHEMAS.incrementAndGet());
        Users.create(h.owner);
        TestDatabase.execute("ALTER ROLE " + h.owner + " CREATEROLE");
        TestDatabase.execute("DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO " + h.owner
                + "', current_database()); END $$");
        PgLease.migrate(Users.as(h.owner), h.schema);
        Users.create(h.candA, h.roles.candidate());
        Users.create(h.candB, h.roles.candidate());
        Users.create(h.observer, h.roles.observer());
        Users.create(h.operator, h.roles.operator());
        Users.create(h.nobody);
        return h;
    }

    /** A further login in {@code roles} (e.g. for a test that changes the login's settings). */
    public String login(String suffix, String... roles) {
        return Users.create(schema + "_" + suffix, roles);
    }

    /** A non-pooling data source that logs in as {@code login}. */
    public DataSource as(String login) {
        return Users.as(login);
    }

    /** The test server's JDBC URL, logging in as {@code login}. */
    public String url(String login) {
        return Users.url(login);
    }

    /** The four logins that are not the victim: candidate B, observer, operator, no role. */
    public List<String> attackers() {
        return List.of(candB, observer, operator, nobody);
    }

    /** A short name of the role a login is in, for test names. */
    public String roleOf(String login) {
        if (login.equals(candA) || login.equals(candB)) {
            return "candidate";
        }
        if (login.equals(observer)) {
            return "observer";
        }
        if (login.equals(operator)) {
            return "operator";
        }
        return login.equals(owner) ? "owner" : "none";
    }

    /** The victim's lease row as the superuser reads it: holder, token, expires_at (epoch micros), or null. */
    public Row row(String lease) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps =
                        c.prepareStatement("SELECT holder, token, (extract(epoch FROM expires_at) * 1e6)::bigint"
                                + " FROM " + schema + ".leases WHERE name = ?")) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? new Row(rs.getString(1), rs.getLong(2), rs.getLong(3)) : null;
            }
        }
    }

    /** A lease row's holder, token and expiry. */
    public record Row(String holder, long token, long expiresAtMicros) {}

    /** The lease_events rows of {@code lease}, as "kind token holder changed_by", oldest first. */
    public List<String> events(String lease) throws SQLException {
        List<String> out = new ArrayList<>();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT kind, token, holder, changed_by FROM " + schema
                        + ".lease_events WHERE name = ? ORDER BY id")) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    out.add(rs.getString(1) + " " + rs.getLong(2) + " " + rs.getString(3) + " " + rs.getString(4));
                }
            }
        }
        return out;
    }

    /** Runs {@code sql} as the superuser. */
    public static void superuser(String sql) {
        TestDatabase.execute(sql);
    }

    /** A single value from a query run as {@code login} ({@code null}: the superuser). */
    public static String query(String login, String sql) throws SQLException {
        return Users.query(login, sql);
    }

    /** Runs {@code sql} as {@code login} (auto-commit). */
    public static void run(String login, String sql) throws SQLException {
        try (Connection c = Users.as(login).getConnection();
                Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }

    @Override
    public String toString() {
        return "schema " + schema + " (owner " + owner + ")";
    }
}
