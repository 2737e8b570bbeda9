package dev.pglease.internal.store;

import dev.pglease.internal.sql.SessionStatements;
import dev.pglease.internal.sql.SqlErrors;
import dev.pglease.internal.util.Timings;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import javax.sql.DataSource;
import org.postgresql.PGConnection;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The blocking waits of fast failover, each on a connection and a thread of its own: a standby waiting for the
 * holder's lease lock, and a holder watching its own lease session. A wait is a statement that blocks on an
 * advisory lock until the session holding it ends; the connection is set up so that no role default (lock,
 * statement or idle timeouts) cancels it. A failed wait is tried again after a backoff until it is cancelled; the backoff starts afresh after a connection that
 * worked, so that a wait ended again and again (a script ending idle connections) is not left retrying seconds apart. A
 * connection that may hold an advisory lock goes back to its pool only after giving every one back; if that fails it
 * is aborted. Starting, cancelling and closing are atomic with respect to each other: a wait started while the
 * watches close is aborted, never left blocked; a wait cancelled while its statement blocks is cancelled on the server
 * too, so that no server session stays queued on the lock.
 */
final class Watches {

    private static final Logger log = LoggerFactory.getLogger(Watches.class);

    /** A blocking statement: returns when the lock it waits for was granted. */
    interface Wait {
        void await(Connection c) throws SQLException;
    }

    private final class Watch implements Runnable {
        final String key;
        final Wait wait;
        final Runnable onWaiting;
        final Runnable onDone;
        final Runnable onFailure;
        volatile boolean cancelled;
        /** The blocking statement of the current attempt has ended: a cancel request would only hit what follows. */
        volatile boolean statementEnded;

        Connection connection;
        /** Counted down when the wait's thread is done with its connection (it ends). */
        final CountDownLatch ended = new CountDownLatch(1);

        Watch(String key, Wait wait, Runnable onWaiting, Runnable onDone, Runnable onFailure) {
            this.key = key;
            this.wait = wait;
            this.onWaiting = onWaiting;
            this.onDone = onDone;
            this.onFailure = onFailure;
        }

        @Override
        public void run() {
            try {
                waitUntilDone();
            } finally {
                finished(this);
                ended.countDown();
            }
        }

        private void waitUntilDone() {
            long backoff = Timings.RECONNECT_FIRST_MILLIS;
            while (true) {
                Connection c = null;
                try {
                    c = dataSource.getConnection();
                    if (!attach(this, c)) {
                        abort(c);
                        return;
                    }
                    if (!c.getAutoCommit()) {
                        c.setAutoCommit(true);
                    }
                    SessionStatements.setWaitingSessionSettings(c);
                    backoff = Timings.RECONNECT_FIRST_MILLIS; // this connection works: a later failure starts afresh
                    onWaiting.run();
                    if (!stillWanted(this)) {
                        detach(this);
                        abort(c);
                        return;
                    }
                    wait.await(c);
                    statementEnded = true;
                    if (!cancelled) {
                        onDone.run();
                    }
                    if (detach(this)) {
                        giveBack(c);
                    } else {
                        // cancelled meanwhile: a cancel request may still reach this connection, so it never goes
                        // back to a pool; its locks are given back first all the same, so that none outlives the
                        // wait while the abort takes effect (behind a session pooler, the pooler's reset)
                        unlockQuietly(c);
                        abort(c);
                    }
                    return;
                } catch (SQLException | RuntimeException e) {
                    statementEnded = true;
                    detach(this);
                    if (c != null) {
                        if (cancelled && e instanceof SQLException sql && !SqlErrors.sessionGone(sql)) {
                            // a cancel that reached the server as the lock was granted fails the statement but
                            // leaves the session's lock held
                            unlockQuietly(c);
                        }
                        abort(c);
                    }
                    if (cancelled) {
                        return;
                    }
                    log.debug("pglease: fast-failover wait {} failed; trying again in {} ms", key, backoff, e);
                    onFailure.run();
                    if (!pause(backoff)) {
                        return;
                    }
                    backoff = Math.min(backoff * 2, Timings.RECONNECT_MAX_MILLIS);
                }
            }
        }

        private synchronized boolean pause(long millis) {
            try {
                if (!cancelled) {
                    wait(millis);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
            return !cancelled;
        }

        private synchronized void wakeUp() {
            notifyAll();
        }
    }

    private final DataSource dataSource;
    private final Map<String, Watch> watches = new HashMap<>();
    private boolean closed;

    Watches(DataSource dataSource) {
        this.dataSource = dataSource;
    }

    /**
     * Starts waiting, under {@code key}, unless a wait of that key runs already; {@code onDone} runs once when the
     * wait ends (not when it is cancelled), {@code onFailure} each time an attempt failed (it is tried again).
     */
    void start(String key, String threadName, Wait wait, Runnable onDone, Runnable onFailure) {
        start(key, threadName, wait, () -> {}, onDone, onFailure);
    }

    /**
     * As {@link #start(String, String, Wait, Runnable, Runnable)}, and {@code onWaiting} runs on the wait's thread each
     * time an attempt has its connection ready, right before it sends the blocking statement.
     */
    void start(String key, String threadName, Wait wait, Runnable onWaiting, Runnable onDone, Runnable onFailure) {
        Watch w = new Watch(key, wait, onWaiting, onDone, onFailure);
        synchronized (this) {
            if (closed || watches.containsKey(key)) {
                return;
            }
            watches.put(key, w);
        }
        Thread t = new Thread(w, threadName);
        t.setDaemon(true);
        t.start();
    }

    synchronized boolean running(String key) {
        return watches.containsKey(key);
    }

    /**
     * Ends the wait of {@code key}, if any: in the background its statement is cancelled on the server and its
     * connection aborted, and its thread ends. A wait that ended just before may still report that it is done.
     */
    void cancel(String key) {
        Watch w;
        Connection blocked;
        synchronized (this) {
            w = watches.remove(key);
            if (w == null) {
                return;
            }
            w.cancelled = true;
            blocked = w.connection;
        }
        if (blocked != null) {
            // off the caller's thread: a cancel request opens a connection of its own (an acquire that just won the
            // lease cancels its standby's wait, and must not wait for that)
            Thread t = new Thread(() -> endOnServer(w, blocked), "pglease-watch-cancel");
            t.setDaemon(true);
            t.start();
        }
        w.wakeUp();
    }

    /**
     * Cancels the statement of a cancelled wait on the server until its thread is done with the connection, then
     * aborts the connection if the thread is not. The server ignores a cancel request that reaches the session between
     * two statements, so it is sent again, {@value #CANCEL_REQUESTS} times over about 1.5 s, until the statement that
     * blocks has ended (none is started after the wait's thread saw it end; one started just before may still land on
     * the statement that gives the wait's locks back, which is then tried again). Each
     * request runs on a thread of its own: a server out of reach holds one up to the driver's cancel timeout, and the
     * connection is aborted after those 1.5 s all the same.
     */
    private static void endOnServer(Watch w, Connection c) {
        for (int i = 0; i < CANCEL_REQUESTS; i++) {
            if (!w.statementEnded) {
                Thread request = new Thread(() -> cancelStatement(c), "pglease-watch-cancel-request");
                request.setDaemon(true);
                request.start();
            }
            try {
                if (w.ended.await(FIRST_CANCEL_WAIT_MILLIS << i, TimeUnit.MILLISECONDS)) {
                    return; // the wait's thread aborted its connection itself
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        abort(c);
    }

    private static final int CANCEL_REQUESTS = 4;
    private static final long FIRST_CANCEL_WAIT_MILLIS = 100;

    /** Ends every wait; no wait starts after this. */
    void close() {
        List<String> keys;
        synchronized (this) {
            closed = true;
            keys = List.copyOf(watches.keySet());
        }
        keys.forEach(this::cancel);
    }

    private synchronized boolean attach(Watch w, Connection c) {
        if (closed || w.cancelled) {
            return false;
        }
        w.connection = c;
        w.statementEnded = false;
        return true;
    }

    private synchronized boolean stillWanted(Watch w) {
        return !closed && !w.cancelled;
    }

    /** Returns whether the wait is still wanted; if not, a cancel may hold its connection. */
    private synchronized boolean detach(Watch w) {
        w.connection = null;
        return !w.cancelled;
    }

    private synchronized void finished(Watch w) {
        watches.remove(w.key, w);
    }

    /** Gives back every advisory lock and setting, then the connection; aborts it if any of that fails. */
    private static void giveBack(Connection c) {
        try {
            SessionStatements.unlockAllAdvisoryLocks(c);
            SessionStatements.resetSessionSettings(c);
            c.close();
        } catch (SQLException | RuntimeException e) {
            log.debug("pglease: giving back a fast-failover wait connection failed; aborting it", e);
            abort(c);
        }
    }

    /**
     * Asks the server to cancel the statement running on {@code c}. Aborting the connection alone closes only the
     * socket: a server session queued on a lock does not read it, and would stay queued until the lock is granted.
     */
    private static void cancelStatement(Connection c) {
        try {
            if (c.isWrapperFor(PGConnection.class)) {
                c.unwrap(PGConnection.class).cancelQuery();
            } else {
                log.debug("pglease: a fast-failover wait's connection is not PostgreSQL JDBC; it is only aborted");
            }
        } catch (SQLException | RuntimeException e) {
            log.debug("pglease: cancelling a fast-failover wait on the server failed", e);
        }
    }

    /**
     * Gives back the locks of a cancelled wait's connection, which is aborted next. A cancel request sent before the
     * wait's statement ended may still land on this statement: it is tried again then.
     */
    private static void unlockQuietly(Connection c) {
        for (int attempt = 1; ; attempt++) {
            try {
                SessionStatements.unlockAllAdvisoryLocks(c);
                return;
            } catch (SQLException e) {
                if (attempt < UNLOCK_ATTEMPTS && SqlErrors.queryCanceled(e)) {
                    continue;
                }
                log.debug("pglease: giving back the locks of a cancelled fast-failover wait failed; aborting it", e);
                return;
            } catch (RuntimeException e) {
                log.debug("pglease: giving back the locks of a cancelled fast-failover wait failed; aborting it", e);
                return;
            }
        }
    }

    /** Each cancel request lands on one statement at most: one attempt more than there are requests. */
    private static final int UNLOCK_ATTEMPTS = CANCEL_REQUESTS + 1;

    private static void abort(Connection c) {
        try {
            c.abort(Runnable::run);
        } catch (SQLException | RuntimeException e) {
            log.debug("pglease: aborting a fast-failover wait connection failed", e);
        }
        try {
            c.close(); // after an abort: a pool learns the connection is dead and drops it
        } catch (SQLException | RuntimeException e) {
            log.debug("pglease: closing an aborted connection failed", e);
        }
    }
}
