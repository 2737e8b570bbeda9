package dev.pglease.internal.util;

import dev.pglease.FencedWork;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import javax.sql.DataSource;

/** Small helpers for the transactions pglease opens on the caller's behalf. */
public final class Transactions {

    private Transactions() {
    }

    /** The statement that makes a transaction pglease opens READ COMMITTED; it must come before any query. */
    public static final String READ_COMMITTED = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED";

    /**
     * The first statements of a transaction pglease opens: {@code isolation} first (it may be sent in one batch with
     * the guard's own statements), then whatever must hold before the work runs.
     */
    @FunctionalInterface
    public interface Guard {
        void open(Connection c, String isolation) throws SQLException;
    }

    /**
     * Runs {@code guard} then {@code work} in one READ COMMITTED transaction on a connection from
     * {@code dataSource}, whatever the pool's default isolation; runs {@code beforeCommit} (which may throw to abort)
     * and commits; rolls everything back on any failure.
     */
    public static <T> T run(DataSource dataSource, Guard guard, FencedWork<T> work, Runnable beforeCommit)
            throws SQLException {
        try (Connection c = dataSource.getConnection()) {
            boolean autoCommit = c.getAutoCommit();
            c.setAutoCommit(false);
            try {
                guard.open(c, READ_COMMITTED);
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

    /** Runs {@code statement} (e.g. {@link #READ_COMMITTED}) alone. */
    public static void execute(Connection c, String statement) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute(statement);
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
