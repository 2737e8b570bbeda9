package dev.pglease.internal.store;

import dev.pglease.LeaseException;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

/**
 * Checks at start that the connected role has what a candidate needs, and names every missing grant and the role
 * to grant. Reads only the system catalogs, so it also answers for a role that may not even look into the schema.
 */
public final class Privileges {

    private Privileges() {
    }

    public static void check(Connection c, String schema) throws SQLException {
        String leases = schema + ".leases";
        List<String> missing = new ArrayList<>();
        String user;
        String candidateRoles;
        try (PreparedStatement ps = c.prepareStatement("""
                SELECT quote_ident(current_user),
                       has_schema_privilege(n.oid, 'USAGE'),
                       t.oid IS NOT NULL AND has_table_privilege(t.oid, 'SELECT'),
                       t.oid IS NOT NULL AND has_table_privilege(t.oid, 'INSERT'),
                       t.oid IS NOT NULL AND has_table_privilege(t.oid, 'UPDATE'),
                       (SELECT string_agg(quote_ident(r.rolname), ', ' ORDER BY r.rolcanlogin, r.rolname)
                          FROM pg_catalog.pg_roles r
                         WHERE r.oid <> t.relowner
                           AND r.oid IN (SELECT a.grantee FROM pg_catalog.aclexplode(t.relacl) a
                                          WHERE a.privilege_type = 'INSERT')
                           AND r.oid IN (SELECT a.grantee FROM pg_catalog.aclexplode(t.relacl) a
                                          WHERE a.privilege_type = 'UPDATE')),
                       t.oid IS NOT NULL
                  FROM pg_catalog.pg_namespace n
                  LEFT JOIN pg_catalog.pg_class t ON t.relnamespace = n.oid AND t.relname = 'leases'
                 WHERE n.nspname = ?
                """)) {
            ps.setString(1, schema);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next() || !rs.getBoolean(7)) {
                    return; // no schema or no leases table: the schema check reports SCHEMA_MISSING
                }
                user = rs.getString(1);
                if (!rs.getBoolean(2)) {
                    missing.add("USAGE ON SCHEMA " + schema);
                }
                if (!rs.getBoolean(3)) {
                    missing.add("SELECT ON " + leases);
                }
                if (!rs.getBoolean(4)) {
                    missing.add("INSERT ON " + leases);
                }
                if (!rs.getBoolean(5)) {
                    missing.add("UPDATE ON " + leases);
                }
                candidateRoles = rs.getString(6);
            }
        }
        if (!missing.isEmpty()) {
            throw new LeaseException(LeaseException.Reason.INSUFFICIENT_PRIVILEGE, message(schema, user, missing,
                    candidateRoles));
        }
    }

    static String message(String schema, String user, List<String> missing, String candidateRoles) {
        String role = candidateRoles != null ? candidateRoles.split(", ")[0] : schema + "_candidate";
        String why = candidateRoles != null ? role + " may insert into and update " + schema + ".leases"
                : "the candidate role the migration creates by default";
        return "the database role " + user + " lacks " + String.join(", ", missing) + ", which a pglease candidate"
                + " needs: GRANT " + role + " TO " + user + "; (" + why + "), or grant these rights directly"
                + " (see README, Security)";
    }
}
