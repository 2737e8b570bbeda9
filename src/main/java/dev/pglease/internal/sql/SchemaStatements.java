package dev.pglease.internal.sql;

import dev.pglease.internal.util.Names;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * What the schema and the server offer: whether the schema is migrated and at which version, what the connected
 * role may do in it, the pglease roles, and whether the server reports its timeline.
 */
public final class SchemaStatements {

    /**
     * The schema version this library needs, as {@code schema_version()} reports it: the number of the latest
     * migration. Raise it with the migration that changes what the library relies on; a schema at another version
     * is refused at start.
     */
    public static final int SCHEMA_VERSION = 1;

    /** Name of the Flyway history table pglease keeps inside its own schema. */
    public static final String HISTORY_TABLE = "pglease_schema_history";

    private final String schema;

    public SchemaStatements(String schema) {
        this.schema = Names.schema(schema);
    }

    /** Whether the schema holds the pglease tables the library uses. */
    public boolean exists(Connection c) throws SQLException {
        return relationsExist(c, List.of(schema + ".leases", schema + ".lease_events"));
    }

    /** Whether the schema holds the pglease tables and the status view the operator commands read. */
    public boolean existsForOperators(Connection c) throws SQLException {
        return relationsExist(c, List.of(schema + ".leases", schema + ".lease_events", schema + ".lease_status"));
    }

    private static boolean relationsExist(Connection c, List<String> relations) throws SQLException {
        StringBuilder sql = new StringBuilder("SELECT to_regclass(?) IS NOT NULL");
        for (int i = 1; i < relations.size(); i++) {
            sql.append(" AND to_regclass(?) IS NOT NULL");
        }
        try (PreparedStatement ps = c.prepareStatement(sql.toString())) {
            for (int i = 0; i < relations.size(); i++) {
                ps.setString(i + 1, relations.get(i));
            }
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    /** Whether the schema has {@code schema_version()} (every migrated schema from version 7 on). */
    public boolean hasSchemaVersion(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
                                 JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                                WHERE n.nspname = ? AND p.proname = 'schema_version' AND p.pronargs = 0)
                """)) {
            ps.setString(1, schema);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    /**
     * The schema's version by {@code schema_version()}, which every pglease role may execute (no access to Flyway's
     * history table needed).
     */
    public int schemaVersion(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT " + schema + ".schema_version()");
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getInt(1);
        }
    }

    /** The version of the latest successful migration in Flyway's history table, if any. */
    public Optional<String> migratedVersion(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT version FROM " + schema + "." + HISTORY_TABLE
                        + " WHERE success AND version IS NOT NULL ORDER BY installed_rank DESC LIMIT 1");
                ResultSet rs = ps.executeQuery()) {
            return rs.next() ? Optional.ofNullable(rs.getString(1)) : Optional.empty();
        }
    }

    /**
     * What the schema's owner can not see of the server's identity ({@code <schema>.term_sources()}), said for a
     * start-up warning: without the timeline, tokens are unique on this server but a promoted asynchronous standby
     * can hand one out again; without the system identifier, terms survive promotions but not a pg_upgrade. Empty
     * when both are visible.
     *
     * @throws SQLException when the server is unreachable
     */
    public Optional<String> hiddenTermSources(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                        "SELECT timeline_visible, system_identifier_visible FROM " + schema + ".term_sources()");
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            if (!rs.getBoolean(1)) {
                return Optional.of("the server does not let the owner of schema " + schema + " read its timeline "
                        + "(pg_walfile_name(pg_current_wal_lsn())): tokens fall back to a plain counter, unique on "
                        + "this server, but a promoted asynchronous standby can hand out a token again");
            }
            if (!rs.getBoolean(2)) {
                return Optional.of("the server does not let the owner of schema " + schema + " read its system "
                        + "identifier (pg_control_system()): tokens survive promotions, but not a pg_upgrade into a "
                        + "new cluster");
            }
            return Optional.empty();
        }
    }

    /** The protocol functions a candidate calls, with their argument types. */
    public static final List<String> CANDIDATE_FUNCTIONS = List.of(
            "acquire(text, text, bigint, text)",
            "renew_all(text, text[], bigint[], bigint)",
            "release(text, text, bigint)",
            "fence(text, bigint, bigint)");

    /**
     * What the connected role may do with the schema, for the start-up check of a candidate.
     *
     * @param user           the role, quoted as an identifier
     * @param missing        what it lacks of what a candidate needs (USAGE on the schema, SELECT on the leases table,
     *                       EXECUTE on each protocol function), as GRANT clauses
     * @param candidateRoles the roles (other than the schema's owner) that may execute the schema's acquire
     *                       function, quoted and comma-separated, login roles last; {@code null} when there are none
     */
    public record CandidatePrivileges(String user, List<String> missing, String candidateRoles) {}

    /**
     * The connected role's privileges on the schema, its leases table and its protocol functions, from the system
     * catalogs only (so it also answers for a role that may not look into the schema); empty when there is no such
     * schema or no leases table.
     */
    public Optional<CandidatePrivileges> candidatePrivileges(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                SELECT quote_ident(current_user),
                       has_schema_privilege(n.oid, 'USAGE'),
                       has_table_privilege(t.oid, 'SELECT'),
                       (SELECT array_agg(f.sig ORDER BY f.ord)
                          FROM unnest(?::text[]) WITH ORDINALITY AS f(sig, ord)
                         WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
                                            WHERE p.pronamespace = n.oid
                                              AND p.proname || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')'
                                                  = f.sig
                                              AND has_function_privilege(p.oid, 'EXECUTE'))),
                       (SELECT string_agg(quote_ident(r.rolname), ', ' ORDER BY r.rolcanlogin, r.rolname)
                          FROM pg_catalog.pg_proc p, pg_catalog.pg_roles r
                         WHERE p.pronamespace = n.oid AND p.proname = 'acquire'
                           AND r.oid <> p.proowner
                           AND r.oid IN (SELECT a.grantee FROM pg_catalog.aclexplode(p.proacl) a
                                          WHERE a.privilege_type = 'EXECUTE'))
                  FROM pg_catalog.pg_namespace n
                  JOIN pg_catalog.pg_class t ON t.relnamespace = n.oid AND t.relname = 'leases'
                 WHERE n.nspname = ?
                """)) {
            ps.setArray(1, c.createArrayOf("text", CANDIDATE_FUNCTIONS.toArray()));
            ps.setString(2, schema);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return Optional.empty();
                }
                List<String> missing = new ArrayList<>();
                if (!rs.getBoolean(2)) {
                    missing.add("USAGE ON SCHEMA " + schema);
                }
                if (!rs.getBoolean(3)) {
                    missing.add("SELECT ON " + schema + ".leases");
                }
                java.sql.Array functions = rs.getArray(4);
                if (functions != null) {
                    for (Object f : (Object[]) functions.getArray()) {
                        missing.add("EXECUTE ON FUNCTION " + schema + "." + f);
                    }
                }
                return Optional.of(new CandidatePrivileges(rs.getString(1), missing, rs.getString(5)));
            }
        }
    }

    /** Whether the connected role is a superuser or a member of the schema's owner: then no guard trigger applies. */
    public boolean bypassesGuards(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                SELECT r.rolsuper OR pg_catalog.pg_has_role(current_user, t.relowner, 'MEMBER')
                  FROM pg_catalog.pg_roles r, pg_catalog.pg_class t
                  JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
                 WHERE r.rolname = current_user AND n.nspname = ? AND t.relname = 'leases'
                """)) {
            ps.setString(1, schema);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() && rs.getBoolean(1);
            }
        }
    }

    /**
     * Who may migrate the schema.
     *
     * @param exists   whether the schema exists
     * @param owner    its owner, {@code null} when it does not exist
     * @param owns     whether the connected role has the rights of the owner (its member, or a superuser)
     * @param database the database connected to
     * @param user     the connected role
     * @param mayCreateSchemas whether the connected role has CREATE on the database
     */
    public record MigrationRights(
            boolean exists, String owner, boolean owns, String database, String user, boolean mayCreateSchemas) {}

    /** Whether the schema exists and the connected role may migrate it as its owner. */
    public MigrationRights migrationRights(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                SELECT n.oid IS NOT NULL, n.nspowner::regrole::text,
                       n.oid IS NOT NULL AND pg_catalog.pg_has_role(current_user, n.nspowner, 'USAGE'),
                       current_database(), current_user,
                       pg_catalog.has_database_privilege(current_database(), 'CREATE')
                  FROM (SELECT 1) AS one
                  LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = ?
                """)) {
            ps.setString(1, schema);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return new MigrationRights(
                        rs.getBoolean(1),
                        rs.getString(2),
                        rs.getBoolean(3),
                        rs.getString(4),
                        rs.getString(5),
                        rs.getBoolean(6));
            }
        }
    }

    /**
     * Creates the schema, owned by the connected role, unless it exists. Needs CREATE on the database: PostgreSQL
     * refuses it with 42501 "permission denied for database ...".
     */
    public void createSchema(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("CREATE SCHEMA IF NOT EXISTS " + schema)) {
            ps.execute();
        }
    }

    /** The connected role. */
    public static String currentUser(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT current_user");
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getString(1);
        }
    }

    /** Whether the connected role may create roles (CREATEROLE, or a superuser). */
    public static boolean mayCreateRoles(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                        "SELECT rolsuper OR rolcreaterole FROM pg_catalog.pg_roles WHERE rolname = current_user");
                ResultSet rs = ps.executeQuery()) {
            return rs.next() && rs.getBoolean(1);
        }
    }

    /** Those of {@code roles} that do not exist, sorted. */
    public static List<String> missingRoles(Connection c, List<String> roles) throws SQLException {
        List<String> missing = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement("SELECT r FROM unnest(?::text[]) r WHERE NOT EXISTS "
                + "(SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) ORDER BY r")) {
            ps.setArray(1, c.createArrayOf("text", roles.toArray()));
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    missing.add(rs.getString(1));
                }
            }
        }
        return missing;
    }
}
