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
 * Protected tables: {@code <schema>.protect(table, lease)} and {@code <schema>.unprotect(table)}, which run with the
 * caller's rights (only a table's owner may change its triggers), and the view {@code <schema>.protected_tables}
 * that every pglease role may read.
 */
public final class ProtectionStatements {

    private final String schema;

    public ProtectionStatements(String schema) {
        this.schema = Names.schema(schema);
    }

    /**
     * A table protected by a lease of the schema, by its schema-qualified name; {@code checkedPer} is
     * {@code statement} or {@code row}.
     */
    public record ProtectedTable(String table, String lease, String checkedPer) {}

    /**
     * A table as the catalog names it, with its owner and its protection.
     *
     * @param table        the table's name, schema-qualified (identifiers quoted where SQL needs it)
     * @param kind         {@code relkind}: {@code r} a table, {@code p} a partitioned table; other kinds can not be
     *                     protected
     * @param owner        its owner
     * @param owns         whether the connected role has the owner's rights
     * @param user         the connected role
     * @param mayProtect   whether the connected role may call {@code <schema>.protect} (USAGE on the schema and
     *                     EXECUTE on the function: the members of the schema's roles)
     * @param protectRoles the roles granted EXECUTE on {@code <schema>.protect}, comma-separated
     * @param lease        the lease of the schema that protects the table now, {@code null} when none does
     */
    public record Table(
            String table,
            String kind,
            String owner,
            boolean owns,
            String user,
            boolean mayProtect,
            String protectRoles,
            String lease) {}

    /**
     * The table {@code name} ({@code schema.table} or a name on the search path), empty when there is none. Read
     * from the catalog only, so it answers for a role that may not use the pglease schema.
     */
    public Optional<Table> table(Connection c, String name) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                SELECT format('%I.%I', s.nspname, t.relname), t.relkind::text, t.relowner::regrole::text,
                       pg_catalog.pg_has_role(current_user, t.relowner, 'USAGE'), current_user,
                       p.oid IS NOT NULL AND pg_catalog.has_schema_privilege(p.pronamespace, 'USAGE')
                           AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE'),
                       (SELECT string_agg(a.grantee::regrole::text, ', ' ORDER BY a.grantee::regrole::text)
                          FROM pg_catalog.aclexplode(p.proacl) a
                         WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner),
                       (SELECT convert_from(substring(g.tgargs FROM 1 FOR position('\\x00'::bytea IN g.tgargs) - 1),
                                            'UTF8')
                          FROM pg_catalog.pg_trigger g
                         WHERE g.tgrelid = t.oid AND g.tgname = ?)
                  FROM pg_catalog.pg_class t
                  JOIN pg_catalog.pg_namespace s ON s.oid = t.relnamespace
                  LEFT JOIN (pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n
                                 ON n.oid = p.pronamespace AND n.nspname = ?)
                         ON p.proname = 'protect'
                 WHERE t.oid = pg_catalog.to_regclass(?)
                """)) {
            // the lease is read from the trigger's argument, as the view protected_tables does: the owner of a
            // table need not be in a pglease role that may read the view
            ps.setString(1, schema + "_fence");
            ps.setString(2, schema);
            ps.setString(3, name);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return Optional.empty();
                }
                return Optional.of(new Table(
                        rs.getString(1),
                        rs.getString(2),
                        rs.getString(3),
                        rs.getBoolean(4),
                        rs.getString(5),
                        rs.getBoolean(6),
                        rs.getString(7),
                        rs.getString(8)));
            }
        }
    }

    /** {@code <schema>.protect(table, lease)}: idempotent for the same lease, refused for another. */
    public void protect(Connection c, String table, String lease) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT " + schema + ".protect(?::regclass, ?)")) {
            ps.setString(1, table);
            ps.setString(2, lease);
            ps.execute();
        }
    }

    /** {@code <schema>.unprotect(table)}: whether the table was protected. */
    public boolean unprotect(Connection c, String table) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT " + schema + ".unprotect(?::regclass)")) {
            ps.setString(1, table);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    /** Every table protected by a lease of the schema, by table name. */
    public List<ProtectedTable> protectedTables(Connection c) throws SQLException {
        List<ProtectedTable> tables = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement("SELECT format('%I.%I', n.nspname, t.relname), p.lease, "
                        + "p.checked_per FROM " + schema + ".protected_tables p "
                        + "JOIN pg_catalog.pg_class t ON t.oid = p.table_name "
                        + "JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace ORDER BY 1");
                ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
                tables.add(new ProtectedTable(rs.getString(1), rs.getString(2), rs.getString(3)));
            }
        }
        return tables;
    }
}
