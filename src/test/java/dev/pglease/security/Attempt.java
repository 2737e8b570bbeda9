package dev.pglease.security;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;

/**
 * One attacker session: runs statements one by one in auto-commit, each allowed to fail (a refusal is a fine
 * outcome for an attack), and keeps a log of what each answered.
 */
final class Attempt implements AutoCloseable {

    final String login;
    final Connection c;
    final List<String> log = new ArrayList<>();

    Attempt(HostileSchema h, String login) throws SQLException {
        this.login = login;
        this.c = h.as(login).getConnection();
        try (Statement s = c.createStatement()) {
            // the attacker's own bounds, so no attack statement can hang the test
            s.execute("SET statement_timeout = '3s'; SET lock_timeout = '1s'");
        }
    }

    /** Runs {@code sql}; returns its first column of the first row (or the update count), or null when it failed. */
    String run(String sql) {
        try (Statement s = c.createStatement()) {
            String answer;
            if (s.execute(sql)) {
                try (ResultSet rs = s.getResultSet()) {
                    answer = rs.next() ? String.valueOf(rs.getString(1)) : "(no row)";
                }
            } else {
                answer = s.getUpdateCount() + " rows";
            }
            log.add(sql + " -> " + answer);
            return answer;
        } catch (SQLException e) {
            log.add(sql + " -> " + e.getSQLState() + " "
                    + e.getMessage().lines().findFirst().orElse(""));
            try {
                if (!c.getAutoCommit()) {
                    c.rollback();
                }
            } catch (SQLException ignored) {
                // the session is gone: later statements say so
            }
            return null;
        }
    }

    @Override
    public void close() throws SQLException {
        c.close();
    }

    @Override
    public String toString() {
        return login + ": " + String.join("\n  ", log);
    }
}
