package dev.pglease.internal.util;

import dev.pglease.FencedWork;
import java.sql.Connection;
import java.sql.SQLException;
import javax.sql.DataSource;

/** Small helpers for the transactions pglease opens on the caller's behalf. */
public final class Transactions {

    private Transactions() {}

    /**
     * The first statements of a transaction pglease opens: its isolation first (whatever the pool's default), then
     * whatever must hold before the work runs.
     */
    @FunctionalInterface
    public interface Guard {
        void open(Connection c) throws SQLException;
    }

    /**
     * Runs {@code guard} then {@code work} in one transaction on a connection from {@code dataSource}; runs
     * {@code beforeCommit} (which may throw to abort) and commits; rolls everything back on any failure.
     */
    public static <T> T run(DataSource dataSource, Guard guard, FencedWork<T> work, Runnable beforeCommit)
            throws SQLException {
        try (Connection c = dataSource.getConnection()) {
            boolean autoCommit = c.getAutoCommit();
            c.setAutoCommit(false);
            try {
                guard.open(c);
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

    public static void rollbackQuietly(Connection c, Throwable cause) {
        try {
            c.rollback();
        } catch (SQLException e) {
            cause.addSuppressed(e);
        }
    }

    public static void restoreAutoCommit(Connection c, boolean autoCommit) {
        try {
            if (!c.isClosed()) {
                c.setAutoCommit(autoCommit);
            }
        } catch (SQLException ignored) {
            // the connection is broken; the pool discards it
        }
    }
}
