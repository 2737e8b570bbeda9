package dev.pglease;

import java.sql.Connection;
import java.sql.SQLException;
import javax.sql.DataSource;

/** Small helpers for the transactions pglease opens on the caller's behalf. */
final class Transactions {

    private Transactions() {
    }

    /**
     * Runs {@code guard} then {@code work} in one transaction on a connection from {@code dataSource}; runs
     * {@code beforeCommit} (which may throw to abort) and commits; rolls everything back on any failure.
     */
    static <T> T run(DataSource dataSource, FencedWork<?> guard, FencedWork<T> work, Runnable beforeCommit)
            throws SQLException {
        try (Connection c = dataSource.getConnection()) {
            boolean autoCommit = c.getAutoCommit();
            c.setAutoCommit(false);
            try {
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
