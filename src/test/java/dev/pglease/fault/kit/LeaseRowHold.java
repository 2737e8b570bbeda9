package dev.pglease.fault.kit;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A transaction of the kit's own holding the lease row {@code FOR NO KEY UPDATE}: every change of the row (a
 * renewal, an acquire, a release) and every fenced write's row lock waits behind it, while plain reads go on. Taken
 * while a node is stopped, it is queued ahead of whatever the node sends when it runs again (behind a lock the stopped
 * node may itself hold, which it releases first).
 */
final class LeaseRowHold implements AutoCloseable {
    private final Connection holder;
    private final CompletableFuture<Void> locked;

    private LeaseRowHold(Connection holder, CompletableFuture<Void> locked) {
        this.holder = holder;
        this.locked = locked;
    }

    /** Returns once the row is locked or the lock request is waiting in the server's queue. */
    static LeaseRowHold take(String url, String schema, String lease) {
        try {
            Connection c = DriverManager.getConnection(url);
            c.setAutoCommit(false);
            int pid;
            try (ResultSet rs = c.createStatement().executeQuery("SELECT pg_backend_pid()")) {
                rs.next();
                pid = rs.getInt(1);
            }
            CompletableFuture<Void> locked = CompletableFuture.runAsync(() -> {
                try (PreparedStatement ps = c.prepareStatement(
                        "SELECT 1 FROM " + schema + ".leases WHERE name = ?" + " FOR NO KEY UPDATE")) {
                    ps.setString(1, lease);
                    ps.executeQuery().close();
                } catch (SQLException e) {
                    throw new IllegalStateException("cannot lock the lease row " + lease, e);
                }
            });
            LeaseRowHold hold = new LeaseRowHold(c, locked);
            hold.awaitLockedOrQueued(url, pid);
            return hold;
        } catch (SQLException e) {
            throw new IllegalStateException("cannot hold the lease row " + lease, e);
        }
    }

    private void awaitLockedOrQueued(String url, int pid) throws SQLException {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        try (Connection watcher = DriverManager.getConnection(url);
                PreparedStatement ps = watcher.prepareStatement(
                        "SELECT wait_event_type = 'Lock' FROM pg_stat_activity" + " WHERE pid = ?")) {
            ps.setInt(1, pid);
            while (!locked.isDone()) {
                try (ResultSet rs = ps.executeQuery()) {
                    if (rs.next() && rs.getBoolean(1)) {
                        return;
                    }
                }
                if (System.nanoTime() - until > 0) {
                    close();
                    throw new IllegalStateException("the lease row lock was neither taken nor queued within 5 s");
                }
                PgServer.sleep(2);
            }
        }
        locked.join();
    }

    /** Ends the transaction: what waited behind it goes on. */
    @Override
    public void close() {
        try {
            holder.close();
            locked.get(5, TimeUnit.SECONDS);
        } catch (SQLException | TimeoutException | ExecutionException e) {
            // the hold ends with its connection either way; a lock request that failed held nothing
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
