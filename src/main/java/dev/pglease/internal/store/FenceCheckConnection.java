package dev.pglease.internal.store;

import dev.pglease.internal.sql.FenceStatements;
import dev.pglease.internal.util.FenceDeadlines;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The connection a {@code PgLease} asks, at a fenced caller transaction's deadline, whether that server transaction
 * still runs ({@link FenceDeadlines.StillRunning}). It is taken from the data source once, at the first fence of a
 * caller's transaction (in the background, so that fence waits for it only briefly), and kept: the answer at a
 * deadline never waits for a pool that is busy then. It sets nothing on its session (a client-side network timeout
 * bounds each answer), runs in auto-commit, and is replaced after any error. When it can not be had or does not
 * answer in time, the deadline aborts the caller's connection, as before.
 */
public final class FenceCheckConnection implements FenceDeadlines.StillRunning, AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(FenceCheckConnection.class);

    private final DataSource dataSource;
    private final int networkTimeoutMillis;
    private final ExecutorService opener;
    /** One question at a time on the connection. */
    private final Object asking = new Object();
    /** Guarded by this. */
    private Connection connection;
    /** The open under way or last done (null: none yet). Guarded by this. */
    private CompletableFuture<Connection> opening;
    /** Guarded by this. */
    private boolean closed;

    /**
     * @param networkTimeout how long the client waits for an answer on the check connection before it drops it
     */
    public FenceCheckConnection(DataSource dataSource, Duration networkTimeout, String threadName) {
        this.dataSource = dataSource;
        this.networkTimeoutMillis = (int) Math.max(1, Math.min(Integer.MAX_VALUE, networkTimeout.toMillis()));
        this.opener = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, threadName);
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Makes sure the connection is open or being opened, and waits for it at most {@code wait}: a fence calls this,
     * so that the connection exists before any deadline needs it. Never throws: a failed open is tried again later.
     */
    public void prepare(Duration wait) {
        CompletableFuture<Connection> open;
        synchronized (this) {
            if (closed || connection != null) {
                return;
            }
            open = startOpening();
        }
        try {
            open.get(wait.toNanos(), TimeUnit.NANOSECONDS);
        } catch (TimeoutException | ExecutionException e) {
            log.debug("pglease: the connection for fence deadline checks is not open yet", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public boolean test(int pid, long xid) throws Exception {
        CompletableFuture<Connection> open;
        synchronized (this) {
            if (closed) {
                throw new SQLException("this PgLease is closed");
            }
            open = connection != null ? CompletableFuture.completedFuture(connection) : startOpening();
        }
        Connection c = open.get(); // bounded by the caller's timeout: then it aborts
        synchronized (asking) {
            try {
                return FenceStatements.stillRunning(c, new FenceStatements.FencedTransaction(pid, xid));
            } catch (SQLException | RuntimeException e) {
                synchronized (this) {
                    if (connection == c) {
                        connection = null;
                    }
                }
                abortQuietly(c);
                throw e;
            }
        }
    }

    private CompletableFuture<Connection> startOpening() {
        if (opening == null || opening.isDone()) {
            opening = CompletableFuture.supplyAsync(this::open, opener);
        }
        return opening;
    }

    private Connection open() {
        Connection c;
        try {
            c = dataSource.getConnection();
        } catch (SQLException e) {
            throw new IllegalStateException("could not open the connection for fence deadline checks", e);
        }
        try {
            c.setNetworkTimeout(Runnable::run, networkTimeoutMillis);
            c.setAutoCommit(true);
        } catch (SQLException | RuntimeException e) {
            abortQuietly(c);
            throw new IllegalStateException("could not set up the connection for fence deadline checks", e);
        }
        synchronized (this) {
            if (closed) {
                closeQuietly(c);
                throw new IllegalStateException("this PgLease is closed");
            }
            connection = c;
            return c;
        }
    }

    @Override
    public void close() {
        Connection c;
        synchronized (this) {
            closed = true;
            c = connection;
            connection = null;
        }
        opener.shutdownNow();
        if (c != null) {
            closeQuietly(c);
        }
    }

    private static void closeQuietly(Connection c) {
        try {
            c.close();
        } catch (SQLException | RuntimeException e) {
            log.debug("pglease: closing the fence check connection failed", e);
        }
    }

    private static void abortQuietly(Connection c) {
        try {
            c.abort(Runnable::run);
        } catch (SQLException | RuntimeException e) {
            log.debug("pglease: aborting the fence check connection failed", e);
        }
        closeQuietly(c);
    }
}
