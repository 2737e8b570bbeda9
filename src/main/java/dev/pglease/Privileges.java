package dev.pglease;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

/** Checks at start that the connected role has what a candidate needs, and names any missing grant. */
final class Privileges {

    private Privileges() {
    }

    static void check(Connection c, String schema) throws SQLException {
        List<String> missing = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement("""
                SELECT has_schema_privilege(?, 'USAGE'),
                       has_table_privilege(?, 'SELECT'),
                       has_table_privilege(?, 'INSERT'),
                       has_table_privilege(?, 'UPDATE')
                """)) {
            String leases = schema + ".leases";
            ps.setString(1, schema);
            ps.setString(2, leases);
            ps.setString(3, leases);
            ps.setString(4, leases);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                if (!rs.getBoolean(1)) {
                    missing.add("USAGE ON SCHEMA " + schema);
                }
                if (!rs.getBoolean(2)) {
                    missing.add("SELECT ON " + leases);
                }
                if (!rs.getBoolean(3)) {
                    missing.add("INSERT ON " + leases);
                }
                if (!rs.getBoolean(4)) {
                    missing.add("UPDATE ON " + leases);
                }
            }
        }
        if (!missing.isEmpty()) {
            throw new LeaseException(LeaseException.Reason.INSUFFICIENT_PRIVILEGE, "the database role lacks "
                    + String.join(", ", missing) + "; grant the candidate role of schema " + schema
                    + " (see README, Security) or GRANT these directly");
        }
    }
}
