package dev.pglease.internal.election;

import dev.pglease.LeaseConfig;
import dev.pglease.internal.sql.FastFailoverStatements;
import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.sql.SessionStatements;
import dev.pglease.internal.store.FastFailoverStore;
import dev.pglease.internal.store.JdbcLeaseStore;
import dev.pglease.internal.store.LeaseStore;
import dev.pglease.internal.store.NotificationListener;
import java.sql.SQLException;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.random.RandomGenerator;
import javax.sql.DataSource;

/**
 * The election engine of one {@code PgLease}, wired: the lease store (with fast failover when configured), the
 * election loop and its threads: the election thread, the deadline timer that steps leaders down while that thread
 * is blocked, the callback threads that call listeners, and the LISTEN connection's thread.
 */
public final class Engine {

    private static final AtomicInteger THREADS = new AtomicInteger();
    /** Listener callbacks of all leases share this many threads; those of one lease run in order. */
    private static final int CALLBACK_THREADS = 4;

    private final LeaseConfig config;
    private final JdbcLeaseStore store;
    /** The store the election loop uses: {@link #store}, or it wrapped for fast failover. */
    private final LeaseStore leaseStore;
    private final ElectionLoop loop;
    private final ThreadPoolExecutor callbackPool;
    private final ScheduledThreadPoolExecutor deadlineTimer;
    private NotificationListener notifications;

    /** Wires the engine; no thread runs and no connection is open until {@link #start}. */
    public Engine(DataSource dataSource, LeaseConfig config, String holderId) {
        this.config = config;
        LeaseStatements statements = new LeaseStatements(config.schema());
        this.store = new JdbcLeaseStore(dataSource, statements, Timing.networkTimeout(config),
                Timing.statementTimeout(config), config.allowUnsafeDurability());
        this.callbackPool = new ThreadPoolExecutor(CALLBACK_THREADS, CALLBACK_THREADS, 0, TimeUnit.SECONDS,
                new LinkedBlockingQueue<>(), daemon("pglease-callbacks-"));
        this.deadlineTimer = new ScheduledThreadPoolExecutor(1, daemon("pglease-deadlines-"));
        this.deadlineTimer.setRemoveOnCancelPolicy(true);
        if (config.fastFailover()) {
            FastFailoverStore fast = new FastFailoverStore(store, statements,
                    new FastFailoverStatements(config.schema()), dataSource);
            this.leaseStore = fast;
            this.loop = new ElectionLoop(fast, holderId, config, RandomGenerator.getDefault(), callbackPool,
                    deadlineTimer);
            fast.onLockFreed(name -> loop.leaseChanged(name, null));
        } else {
            this.leaseStore = store;
            this.loop = new ElectionLoop(store, holderId, config, RandomGenerator.getDefault(), callbackPool,
                    deadlineTimer);
        }
    }

    public ElectionLoop loop() {
        return loop;
    }

    /** Lease statements run in transactions of their own: the data source goes through a transaction pooler. */
    public void useTransactionScopedSettings() {
        store.useTransactionScopedSettings();
    }

    /** Opens the lease connection now, so that a bad database or unsafe settings are reported at start. */
    public void openLeaseConnection() throws SQLException {
        store.verify();
    }

    /**
     * Starts the threads; with {@code listenOn}, LISTENs there for released leases (else standbys poll). Every thread
     * is there before the first election: its callback must not wait for one to be created.
     */
    public void start(Optional<DataSource> listenOn) {
        callbackPool.prestartAllCoreThreads();
        deadlineTimer.prestartAllCoreThreads();
        loop.start();
        if (listenOn.isPresent()) {
            notifications = new NotificationListener(listenOn.get(), SessionStatements.channel(config.schema()), loop,
                    config.leaseDuration(), Timing.networkTimeout(config));
            notifications.start();
        }
    }

    /**
     * Ends every leadership locally, releases every held lease (waiting at most renewDeadline) and stops the
     * threads.
     */
    public void close() {
        // a plain loop, like the rest of the hand-off path: the first release is not held up by linking a stream
        List<ElectionLoop.Campaign> campaigns = loop.campaigns();
        CompletableFuture<?>[] leaving = new CompletableFuture<?>[campaigns.size()];
        for (int i = 0; i < leaving.length; i++) {
            leaving[i] = loop.leave(campaigns.get(i));
        }
        try {
            CompletableFuture.allOf(leaving).get(config.renewDeadline().toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (TimeoutException | ExecutionException e) {
            // unreleased leases expire on their own; leadership already ended locally
        }
        stop();
    }

    /** Stops the threads and closes the store, releasing nothing. */
    public void stop() {
        if (notifications != null) {
            notifications.close();
        }
        loop.close();
        deadlineTimer.shutdownNow();
        callbackPool.shutdown();
        try {
            callbackPool.awaitTermination(config.renewDeadline().toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        leaseStore.close();
    }

    private static ThreadFactory daemon(String prefix) {
        return r -> {
            Thread t = new Thread(r, prefix + THREADS.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }
}
