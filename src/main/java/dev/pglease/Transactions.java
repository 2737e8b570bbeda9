package dev.pglease;

import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import javax.sql.DataSource;

/** Small helpers for the transactions pglease opens on the caller's behalf. */
final class Transactions {

    private Transactions() {
    }

    /**
     * Runs {@code guard} then {@code work} in one READ COMMITTED transaction on a connection from
     * {@code dataSource}, whatever the pool's default isolation; runs {@code beforeCommit} (which may throw to abort)
     * and commits; rolls everything back on any failure.
     */
    static <T> T run(DataSource dataSource, FencedWork<?> guard, FencedWork<T> work, Runnable beforeCommit)
            throws SQLException {
        try (Connection c = dataSource.getConnection()) {
            boolean autoCommit = c.getAutoCommit();
            c.setAutoCommit(false);
            try {
                readCommitted(c);
                guard.execute(c);
                T result = work.execute(c);
                beforeCommit.run();
                c.commit();
                return result;
            } catch (SQLException | RuntimeException | Error e) {
                rollbackQuietly(c, e);
                throw e;
            } finally {
                restoreAutoCommit(c, autoCommit);
            }
        }
    }

    /** First statement of a transaction pglease owns: its isolation, for this transaction only. */
    private static void readCommitted(Connection c) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED");
        }
    }

    static void rollbackQuietly(Connection c, Throwable cause) {
        try {
            c.rollback();
        } catch (SQLException e) {
            cause.addSuppressed(e);
        }
    }

    static void restoreAutoCommit(Connection c, boolean autoCommit) {
        try {
            if (!c.isClosed()) {
                c.setAutoCommit(autoCommit);
            }
        } catch (SQLException ignored) {
            // the connection is broken; the pool discards it
        }
    }
}
