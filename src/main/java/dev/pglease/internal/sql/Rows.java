package dev.pglease.internal.sql;

import dev.pglease.internal.util.Names;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;

/** Reading the answer of a conditional statement: zero rows is an outcome, more rows than possible is a bug. */
final class Rows {

    private Rows() {}

    /** Whether {@code ps} returned its one row; throws when it returned more than one. */
    static boolean atMostOne(PreparedStatement ps, String what, String name) throws SQLException {
        try (ResultSet rs = ps.executeQuery()) {
            if (!rs.next()) {
                return false;
            }
            if (rs.next()) {
                throw new IllegalStateException(what + " of " + Names.quote(name) + " returned more than one row");
            }
            return true;
        }
    }

    /** The boolean a function called for its answer returned (false for SQL NULL). */
    static boolean bool(PreparedStatement ps) throws SQLException {
        try (ResultSet rs = ps.executeQuery()) {
            return rs.next() && rs.getBoolean(1);
        }
    }

    /** Runs a statement that answers one row and reads nothing from it (a function called for its effect). */
    static void one(PreparedStatement ps) throws SQLException {
        try (ResultSet rs = ps.executeQuery()) {
            rs.next();
        }
    }
}
