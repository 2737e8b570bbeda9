package dev.pglease.internal.util;

import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.postgresql.core.BaseConnection;
import org.postgresql.core.TransactionState;

/**
 * The client-side bound of fenced transactions: when a fenced transaction is still open at the local deadline its
 * grant had when it was fenced, its connection is aborted ({@link Connection#abort}), so the server rolls it back and
 * its lease row lock is gone, on every PostgreSQL version and whatever the session's settings. One daemon thread
 * per {@code PgLease} runs every deadline; a transaction costs a scheduled task, never a thread.
 *
 * <p>The abort comes a little after the deadline (a tenth of the bound, at most {@link #GRACE_MAX}): the server's own
 * timeouts, set to the same bound by the fence, end the transaction first when they can (cheaper: the connection
 * survives a statement or lock timeout), and the lease itself lasts longer than the grant's local deadline by more
 * than that (at least a tenth of the lease), so a successor is never held up by the grace.
 *
 * <p>A watch is kept per physical connection and lease. Whoever opened the transaction (pglease itself, or the Spring
 * integration) marks the commit with {@link #beginCommit} (from then on the deadline no longer aborts: a commit
 * that started before the deadline is never cut in half) and ends the watch with {@link #end} when the
 * transaction is over. A caller's own transaction ({@code PgLease.fenceTransaction}) has no such end: at the
 * deadline its connection is aborted only if it has not been closed (a pooled connection handed back is closed)
 * and is inside a transaction, and only if the database still runs the very server transaction that was fenced (its
 * backend and transaction id, asked on another connection, which the {@code PgLease} keeps for it): a later transaction
 * on the same connection is not aborted when the database answers. When it can not tell within {@link #CHECK_TIMEOUT},
 * the connection is aborted, whatever transaction it runs by then. A later fence of
 * the same lease on that connection replaces the watch.
 */
public final class FenceDeadlines implements AutoCloseable {

    private static final int OPEN = 0;
    private static final int COMMITTING = 1;
    private static final int ENDED = 2;
    private static final int ABORTED = 3;
    private static final int CHECKING = 4;

    /** The longest wait for the database to tell whether the fenced transaction still runs (then: abort). */
    static final Duration CHECK_TIMEOUT = Duration.ofSeconds(1);

    /** How long an aborted watch nobody ended is kept for its owner to see (then its dead connection is let go). */
    private static final long KEEP_ABORTED_NANOS = TimeUnit.MINUTES.toNanos(1);

    /** The longest wait past the deadline before the abort. */
    static final Duration GRACE_MAX = Duration.ofMillis(100);

    private static final Map<Key, Watch> WATCHES = new ConcurrentHashMap<>();
    private static final AtomicInteger ABORTED_KEPT = new AtomicInteger();

    private final ScheduledThreadPoolExecutor timer;
    private final StillRunning stillRunning;
    private final ExecutorService checks;

    /** Asks the database, on a connection of its own, whether a backend is still in a transaction. */
    @FunctionalInterface
    public interface StillRunning {
        boolean test(int pid, long xid) throws Exception;
    }

    /** Deadlines that abort a caller's connection still inside a transaction without asking which one. */
    public FenceDeadlines(String threadName) {
        this(threadName, null);
    }

    /**
     * @param stillRunning asks whether the fenced server transaction of a caller's connection still runs at its
     *                     deadline; null to abort whatever transaction the connection is in then
     */
    public FenceDeadlines(String threadName, StillRunning stillRunning) {
        timer = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, threadName);
            t.setDaemon(true);
            return t;
        });
        timer.setRemoveOnCancelPolicy(true);
        timer.setExecuteExistingDelayedTasksAfterShutdownPolicy(false);
        this.stillRunning = stillRunning;
        this.checks = stillRunning == null
                ? null
                : Executors.newCachedThreadPool(r -> {
                    Thread t = new Thread(r, threadName + "-check");
                    t.setDaemon(true);
                    return t;
                });
    }

    private record Key(Object connection, String lease) {}

    /** One fenced transaction's deadline on one connection. */
    public static final class Watch {
        private final Key key;
        private final Connection connection;
        private final String lease;
        private final long token;
        private final Duration bound;
        private final AtomicInteger state = new AtomicInteger(OPEN);
        private final FenceDeadlines owner;
        private volatile ScheduledFuture<?> task;
        private volatile long abortedAt;
        private volatile boolean identified;
        private volatile int pid;
        private volatile long xid;

        private Watch(FenceDeadlines owner, Key key, Connection connection, String lease, long token, Duration bound) {
            this.owner = owner;
            this.key = key;
            this.connection = connection;
            this.lease = lease;
            this.token = token;
            this.bound = bound;
        }

        /** The server transaction the fence locked the lease row in: the only one the deadline may abort. */
        public void identify(int pid, long xid) {
            this.pid = pid;
            this.xid = xid;
            this.identified = true;
        }

        /** Whether the deadline aborted the connection. */
        public boolean aborted() {
            return state.get() == ABORTED;
        }

        /** Forgets this watch: the transaction ended, or its fence failed (it holds no lease row lock). */
        public void end() {
            if (WATCHES.remove(key, this)) {
                forget();
            }
        }

        /** What happened, for the exception the transaction's owner throws. */
        public String describe() {
            return "the fenced transaction of lease " + Names.quote(lease) + " (token " + token
                    + ") was still open at the grant's local deadline (" + bound.toMillis() + " ms after the fence), "
                    + "so its connection was aborted and nothing of it was committed";
        }

        private void fire() {
            if (!state.compareAndSet(OPEN, CHECKING)) {
                return;
            }
            if (!insideTransaction(connection)) {
                ended();
                return;
            }
            if (!identified || owner.checks == null) {
                abortNow();
                return;
            }
            int p = pid;
            long x = xid;
            CompletableFuture<Boolean> running;
            try {
                running = CompletableFuture.supplyAsync(
                        () -> {
                            try {
                                return owner.stillRunning.test(p, x);
                            } catch (Exception e) {
                                return true; // can not tell: abort
                            }
                        },
                        owner.checks);
            } catch (RejectedExecutionException e) {
                abortNow(); // closing: nothing left to ask with
                return;
            }
            running.completeOnTimeout(true, CHECK_TIMEOUT.toNanos(), TimeUnit.NANOSECONDS)
                    .thenAccept(stillThere -> {
                        if (stillThere) {
                            abortNow();
                        } else {
                            ended(); // the fenced transaction ended; the connection runs a later one
                        }
                    });
        }

        private void ended() {
            if (state.compareAndSet(CHECKING, ENDED)) {
                WATCHES.remove(key, this);
            }
        }

        /** Aborts the connection, unless the transaction began to commit or ended meanwhile. */
        private void abortNow() {
            if (!state.compareAndSet(CHECKING, ABORTED)) {
                return;
            }
            abortedAt = System.nanoTime();
            ABORTED_KEPT.incrementAndGet();
            try {
                connection.abort(Runnable::run);
            } catch (SQLException | RuntimeException e) {
                abortPhysical(key.connection());
            }
        }

        /** Cancels the deadline of a watch just taken out of the registry (once per watch). */
        private void forget() {
            ScheduledFuture<?> t = task;
            if (t != null) {
                t.cancel(false);
            }
            if (!state.compareAndSet(OPEN, ENDED)
                    && !state.compareAndSet(COMMITTING, ENDED)
                    && !state.compareAndSet(CHECKING, ENDED)
                    && aborted()) {
                ABORTED_KEPT.decrementAndGet();
            }
        }
    }

    /**
     * Watches the transaction just being fenced on {@code connection}: aborts the connection after {@code bound}
     * (and the grace) unless the transaction began to commit or ended first. Replaces an earlier watch of the same lease on the same
     * physical connection.
     */
    public Watch watch(Connection connection, String lease, long token, Duration bound) {
        sweep();
        Key key = new Key(physical(connection), lease);
        Watch watch = new Watch(this, key, connection, lease, token, bound);
        Watch previous = WATCHES.put(key, watch);
        if (previous != null) {
            previous.forget();
        }
        try {
            long nanos = Math.max(0, bound.toNanos());
            long grace = Math.min(GRACE_MAX.toNanos(), nanos / 10);
            watch.task = timer.schedule(watch::fire, nanos + grace, TimeUnit.NANOSECONDS);
        } catch (RejectedExecutionException e) {
            // the PgLease is closed: its grants are no longer valid, the commit check refuses
            WATCHES.remove(key, watch);
        }
        return watch;
    }

    /**
     * The transaction on {@code connection} is about to commit: its deadlines no longer abort it.
     *
     * @return the watch whose deadline already aborted the connection, if any: then do not commit
     */
    public static Optional<Watch> beginCommit(Connection connection) {
        Object physical = physical(connection);
        Watch aborted = null;
        for (Watch w : WATCHES.values()) {
            if (w.key.connection() != physical || w.state.compareAndSet(OPEN, COMMITTING)) {
                continue;
            }
            if (w.state.get() == CHECKING) {
                w.abortNow(); // its deadline passed: the transaction its owner commits is the fenced one
            }
            if (w.aborted()) {
                aborted = w;
            }
        }
        return Optional.ofNullable(aborted);
    }

    /**
     * The transaction on {@code connection} is over (committed or rolled back): forgets its watches.
     *
     * @return the watch whose deadline aborted the connection, if any
     */
    public static Optional<Watch> end(Connection connection) {
        Object physical = physical(connection);
        Watch aborted = null;
        for (Watch w : WATCHES.values()) {
            if (w.key.connection() == physical && WATCHES.remove(w.key, w)) {
                if (w.aborted()) {
                    aborted = w;
                }
                w.forget();
            }
        }
        return Optional.ofNullable(aborted);
    }

    /** The watch whose deadline aborted the transaction on {@code connection}, if one did and it was not ended. */
    public static Optional<Watch> aborted(Connection connection) {
        Object physical = physical(connection);
        return WATCHES.values().stream()
                .filter(w -> w.key.connection() == physical && w.aborted())
                .findFirst();
    }

    /** Stops the timer; deadlines not yet reached no longer abort (the grants end with their {@code PgLease}). */
    @Override
    public void close() {
        timer.shutdownNow();
        if (checks != null) {
            checks.shutdownNow();
        }
    }

    /** Lets go of aborted watches nobody ended for a while (a caller's own transaction has no end). */
    private static void sweep() {
        if (ABORTED_KEPT.get() == 0) {
            return;
        }
        long now = System.nanoTime();
        for (Watch w : WATCHES.values()) {
            if (w.aborted() && now - w.abortedAt > KEEP_ABORTED_NANOS && WATCHES.remove(w.key, w)) {
                w.forget();
            }
        }
    }

    /** The driver's own connection behind pool proxies: the identity of one server session. */
    private static Object physical(Connection connection) {
        try {
            if (connection.isWrapperFor(BaseConnection.class)) {
                return connection.unwrap(BaseConnection.class);
            }
        } catch (SQLException e) {
            // not unwrappable: the connection object itself
        }
        return connection;
    }

    /**
     * Whether the connection is still open and inside a transaction. Reads only client-side state (no round trip,
     * no lock the application's thread may hold).
     */
    private static boolean insideTransaction(Connection connection) {
        try {
            if (connection.isClosed()) {
                return false;
            }
            if (connection.isWrapperFor(BaseConnection.class)) {
                return connection.unwrap(BaseConnection.class).getTransactionState() != TransactionState.IDLE;
            }
            return true;
        } catch (SQLException e) {
            return false;
        }
    }

    private static void abortPhysical(Object physical) {
        if (physical instanceof Connection c) {
            try {
                c.abort(Runnable::run);
            } catch (SQLException | RuntimeException ignored) {
                // already closed
            }
        }
    }
}
