package dev.pglease.internal.util;

import dev.pglease.FencedWork;
import dev.pglease.LeaseException;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Optional;
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
     * {@code beforeCommit} (which may throw to abort) and commits; rolls everything back on any failure. When the
     * guard fenced the transaction, its {@link FenceDeadlines deadline} is honoured: a transaction still open at the
     * deadline was aborted and ends in {@link LeaseException} {@code LEASE_LOST}, and the commit, once begun, is no
     * longer aborted.
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
                Optional<FenceDeadlines.Watch> aborted = FenceDeadlines.beginCommit(c);
                if (aborted.isPresent()) {
                    throw lost(aborted.get(), null);
                }
                c.commit();
                return result;
            } catch (SQLException | RuntimeException | Error e) {
                rollbackQuietly(c, e);
                Optional<FenceDeadlines.Watch> aborted = FenceDeadlines.end(c);
                if (aborted.isPresent() && !(e instanceof LeaseException)) {
                    throw lost(aborted.get(), e);
                }
                throw e;
            } finally {
                FenceDeadlines.end(c);
                restoreAutoCommit(c, autoCommit);
            }
        }
    }

    /** The outcome of a fenced transaction whose deadline aborted it: LEASE_LOST, with what failed as the cause. */
    public static LeaseException lost(FenceDeadlines.Watch aborted, Throwable failure) {
        return new LeaseException(LeaseException.Reason.LEASE_LOST, aborted.describe(), failure);
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
