package dev.pglease.demo;

import dev.pglease.PgLease;
import dev.pglease.internal.tool.EmbeddedPostgresServer;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;

/**
 * The logins of the demo on its embedded server, as a real deployment has them: an owner that migrates the pglease
 * schema and makes the demo's tables (CREATE on the database, nothing else: the three roles are made for it), and a
 * charger login that is a member of the candidate role only, so that every guard of the schema applies to the nodes.
 *
 * @param owner      the owner login
 * @param charger    the chargers' login
 * @param roles      the schema's roles
 * @param ownerUrl   the JDBC URL of the owner login
 * @param chargerUrl the JDBC URL of the chargers' login
 */
record DemoLogins(String owner, String charger, PgLease.Roles roles, String ownerUrl, String chargerUrl) {

    static final String OWNER = "pglease_demo_owner";
    static final String CHARGER = "pglease_demo_charger";

    /** As the embedded server's superuser: the schema's three roles and the two logins (trust authentication). */
    static DemoLogins create(EmbeddedPostgresServer server, String schema) throws SQLException {
        PgLease.Roles roles = PgLease.Roles.defaultsFor(schema);
        try (Connection c = server.dataSource().getConnection();
                Statement s = c.createStatement()) {
            for (String role : new String[] {roles.candidate(), roles.observer(), roles.operator()}) {
                s.execute("CREATE ROLE " + role + " NOLOGIN");
            }
            s.execute("CREATE ROLE " + OWNER + " LOGIN");
            s.execute("GRANT CREATE ON DATABASE postgres TO " + OWNER);
            s.execute("CREATE ROLE " + CHARGER + " LOGIN IN ROLE " + roles.candidate());
        }
        String base = server.jdbcUrl().replaceFirst("user=[^&]*", "user=");
        return new DemoLogins(OWNER, CHARGER, roles, base + OWNER, base + CHARGER);
    }
}
