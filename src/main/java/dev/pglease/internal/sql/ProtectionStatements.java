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

    /** A table protected by a lease of the schema; {@code checkedPer} is {@code statement} or {@code row}. */
    public record ProtectedTable(String table, String lease, String checkedPer) {}

    /**
     * A table as the catalog names it, with its owner.
     *
     * @param table     the table's name as PostgreSQL prints it (schema-qualified unless on the search path)
     * @param kind      {@code relkind}: {@code r} a table, {@code p} a partitioned table, other kinds can not be
     *                  protected
     * @param owner     its owner
     * @param owns      whether the connected role has the owner's rights
     * @param user      the connected role
     * @param usesSchema whether the connected role may use the pglease schema (it names the schema's functions)
     */
    public record Table(String table, String kind, String owner, boolean owns, String user, boolean usesSchema) {}

    /** The table {@code name} ({@code schema.table} or a name on the search path), empty when there is none. */
    public Optional<Table> table(Connection c, String name) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                SELECT t.oid::regclass::text, t.relkind::text, t.relowner::regrole::text,
                       pg_catalog.pg_has_role(current_user, t.relowner, 'USAGE'), current_user,
                       pg_catalog.has_schema_privilege(?, 'USAGE')
                  FROM pg_catalog.pg_class t
                 WHERE t.oid = pg_catalog.to_regclass(?)
                """)) {
            ps.setString(1, schema);
            ps.setString(2, name);
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
                        rs.getBoolean(6)));
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
        try (PreparedStatement ps = c.prepareStatement("SELECT table_name::text, lease, checked_per FROM " + schema
                        + ".protected_tables ORDER BY table_name::text");
                ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
                tables.add(new ProtectedTable(rs.getString(1), rs.getString(2), rs.getString(3)));
            }
        }
        return tables;
    }
}
