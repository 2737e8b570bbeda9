package dev.pglease.internal.store;

import dev.pglease.LeaseException;
import dev.pglease.internal.sql.SchemaStatements;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.List;
import java.util.Optional;

/**
 * Checks at start that the connected role has what a candidate needs, and names every missing grant and the role
 * to grant. Reads only the system catalogs ({@link SchemaStatements#candidatePrivileges}), so it also answers for a
 * role that may not even look into the schema.
 */
public final class Privileges {

    private Privileges() {}

    public static void check(Connection c, String schema) throws SQLException {
        Optional<SchemaStatements.CandidatePrivileges> found = new SchemaStatements(schema).candidatePrivileges(c);
        if (found.isEmpty()) {
            return; // no schema or no leases table: the schema check reports SCHEMA_MISSING
        }
        SchemaStatements.CandidatePrivileges has = found.get();
        if (!has.missing().isEmpty()) {
            throw new LeaseException(
                    LeaseException.Reason.INSUFFICIENT_PRIVILEGE,
                    message(schema, has.user(), has.missing(), has.candidateRoles()));
        }
    }

    static String message(String schema, String user, List<String> missing, String candidateRoles) {
        String role = candidateRoles != null ? candidateRoles.split(", ")[0] : schema + "_candidate";
        String why = candidateRoles != null
                ? role + " may call " + schema + ".acquire"
                : "the candidate role the migration creates by default";
        return "the database role " + user + " lacks " + String.join(", ", missing) + ", which a pglease candidate"
                + " needs: GRANT " + role + " TO " + user + "; (" + why + "), or grant these rights directly"
                + " (see docs/security.md)";
    }
}
