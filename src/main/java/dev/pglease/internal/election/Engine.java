package dev.pglease.internal.election;

import dev.pglease.LeaseConfig;
import dev.pglease.LeaseGrant;
import dev.pglease.internal.sql.FastFailoverStatements;
import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.sql.SessionStatements;
import dev.pglease.internal.sql.SqlErrors;
import dev.pglease.internal.store.FastFailoverStore;
import dev.pglease.internal.store.JdbcLeaseStore;
import dev.pglease.internal.store.LeaseConnectionHooks;
import dev.pglease.internal.store.LeaseStore;
import dev.pglease.internal.store.NotificationListener;
import dev.pglease.internal.store.StartupChecks;
import dev.pglease.internal.util.Timings;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.random.RandomGenerator;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The election engine of one {@code PgLease}, wired: the lease store (with fast failover when configured), the
 * election loop and its threads: the election thread, the deadline timer that steps leaders down while that thread
 * is blocked, the callback threads that call listeners (each lease's calls on a thread of their own while they run),
 * the LISTEN connection's thread, and with fast failover the threads that wait on advisory locks. Every component
 * gets the same {@link Timings}.
 */
public final class Engine {

    private static final Logger log = LoggerFactory.getLogger(Engine.class);

    private static final AtomicInteger THREADS = new AtomicInteger();
    /**
     * Callback threads started with the engine, so that a first election waits for no thread to be created. More
     * are started while more leases have calls running at once: the calls of one lease run in order, one at a time,
     * and never wait for another lease's (a listener that works inside {@code onElected} keeps its thread).
     */
    private static final int CALLBACK_THREADS = 4;
    /** How long a callback thread beyond {@link #CALLBACK_THREADS} stays idle before it ends. */
    private static final long SPARE_CALLBACK_THREAD_IDLE_SECONDS = 30;

    /** What a lock's holder id adds to the process's: locks and elections never share a holder identity. */
    public static final String LOCK_HOLDER_SUFFIX = "#lock";

    private final DataSource dataSource;
    private final LeaseConfig config;
    private final Timings timings;
    private final String holderId;
    private final JdbcLeaseStore store;
    /** The store the election loop uses: {@link #store}, or it wrapped for fast failover. */
    private final LeaseStore leaseStore;

    private final ElectionLoop loop;
    private final ThreadPoolExecutor callbackPool;
    private final ScheduledThreadPoolExecutor deadlineTimer;
    private NotificationListener notifications;
    private volatile StartupChecks.NotificationMode notificationMode;
    /** Lease groups' receivers of notifications, besides the loop. */
    private final List<NotificationListener.Receiver> receivers = new CopyOnWriteArrayList<>();

    private volatile boolean notificationsHealthy;

    /** Wires the engine; no thread runs and no connection is open until {@link #start}. */
    public Engine(DataSource dataSource, LeaseConfig config, Timings timings, String holderId) {
        this.dataSource = dataSource;
        this.config = config;
        this.timings = timings;
        this.holderId = holderId;
        LeaseStatements statements = new LeaseStatements(config.schema());
        this.store = new JdbcLeaseStore(
                dataSource,
                statements,
                timings.networkTimeout(),
                timings.statementTimeout(),
                config.allowUnsafeDurability());
        this.callbackPool = new ThreadPoolExecutor(
                CALLBACK_THREADS,
                Integer.MAX_VALUE,
                SPARE_CALLBACK_THREAD_IDLE_SECONDS,
                TimeUnit.SECONDS,
                new SynchronousQueue<>(),
                daemon("pglease-callbacks-"));
        this.deadlineTimer = new ScheduledThreadPoolExecutor(1, daemon("pglease-deadlines-"));
        this.deadlineTimer.setRemoveOnCancelPolicy(true);
        if (config.fastFailover()) {
            FastFailoverStore fast = new FastFailoverStore(
                    store,
                    statements,
                    new FastFailoverStatements(config.schema()),
                    dataSource,
                    config.schema(),
                    config.ticker(),
                    timings.retryPeriod());
            this.leaseStore = fast;
            this.loop = new ElectionLoop(
                    fast, holderId, config, timings, RandomGenerator.getDefault(), callbackPool, deadlineTimer);
            fast.tell(new FastFailoverStore.Events() {
                @Override
                public void holderGone(String name) {
                    loop.holderGone(name);
                }

                @Override
                public void lost(String name, long token, String reason) {
                    loop.lost(name, token, reason);
                }

                @Override
                public void sessionInDoubt() {
                    loop.lookAtHeldLeases();
                }

                @Override
                public void serverSessionShared(String reason) {
                    loop.loseAll(reason);
                }
            });
        } else {
            this.leaseStore = store;
            this.loop = new ElectionLoop(
                    store, holderId, config, timings, RandomGenerator.getDefault(), callbackPool, deadlineTimer);
        }
    }

    public ElectionLoop loop() {
        return loop;
    }

    /** The durations every component of this engine works with. */
    public Timings timings() {
        return timings;
    }

    /** The holder id of this process's locks: its electors' holder id and {@link #LOCK_HOLDER_SUFFIX}. */
    public String lockHolder() {
        return holderId + LOCK_HOLDER_SUFFIX;
    }

    /**
     * The fencing path's hook: a fence with {@code grant} was refused because the database no longer lists its
     * holder with its token (STALE_TOKEN). The elector's leadership or the lock with that token ends at once, as if
     * a renewal had been refused. Returns whether one of this process's grants ended.
     */
    public boolean fenceRefused(LeaseGrant grant) {
        if (!grant.holder().equals(holderId) && !grant.holder().equals(lockHolder())) {
            return false;
        }
        return loop.lost(
                grant.leaseName(),
                grant.token(),
                "a fence found that the database no longer lists this holder with token " + grant.token());
    }

    /** How standbys learn of released leases, chosen at {@link #start} (for tests and diagnostics). */
    public StartupChecks.NotificationMode notificationMode() {
        return notificationMode;
    }

    /**
     * Runs the start-up checks ({@link StartupChecks}), opens the lease connection (so that a bad database or unsafe
     * settings are reported at start), then starts the threads; LISTENs for released leases unless the data sources
     * leave only polling. On a refusal nothing is left running. Every thread is there before the first election: its
     * callback must not wait for one to be created.
     *
     * @throws dev.pglease.LeaseException what the checks refused, or DATABASE_UNAVAILABLE / DATABASE_READ_ONLY
     */
    public void start() {
        try {
            check();
        } catch (RuntimeException e) {
            stop();
            throw e;
        }
        callbackPool.prestartAllCoreThreads();
        deadlineTimer.prestartAllCoreThreads();
        loop.start();
        if (notificationMode == StartupChecks.NotificationMode.POLLING) {
            log.info(
                    "pglease: the data source is transaction-pooled and no LeaseConfig.directDataSource is set: no "
                            + "LISTEN; standbys look for a released lease at least every retryPeriod ({})",
                    timings.retryPeriod());
        } else {
            notifications = new NotificationListener(
                    config.directDataSource().orElse(dataSource),
                    SessionStatements.channel(config.schema()),
                    new Receivers(),
                    timings);
            notifications.start();
        }
    }

    // ---------------------------------------------------------------- what lease groups add

    /** Installs what lease groups add to the lease connection's acquire and renew statements. */
    public void leaseConnectionHooks(LeaseConnectionHooks hooks) {
        store.hooks(hooks);
    }

    /** The fast-failover store, in that mode (lease groups watch their members' sessions with it); else null. */
    public FastFailoverStore fastFailover() {
        return leaseStore instanceof FastFailoverStore f ? f : null;
    }

    /** Adds a receiver of every notification, told at once whether notifications are up now. */
    public void addNotificationReceiver(NotificationListener.Receiver receiver) {
        receivers.add(receiver);
        receiver.notificationsHealthy(notificationsHealthy);
    }

    /**
     * Runs the renewal statement for no lease, on the lease connection: what the {@link #leaseConnectionHooks}
     * renew along with leases (member rows) is renewed alone.
     */
    public void renewHooksAlone() {
        try {
            store.renew(holderId, List.of());
        } catch (SQLException e) {
            throw SqlErrors.unavailable("could not renew the group memberships", e);
        }
    }

    /** The loop and the lease groups' receivers, told of every notification. */
    private final class Receivers implements NotificationListener.Receiver {
        @Override
        public void notice(String name) {
            loop.notice(name);
            for (NotificationListener.Receiver r : receivers) {
                r.notice(name);
            }
        }

        @Override
        public void notificationsHealthy(boolean healthy) {
            notificationsHealthy = healthy;
            loop.notificationsHealthy(healthy);
            for (NotificationListener.Receiver r : receivers) {
                r.notificationsHealthy(healthy);
            }
        }
    }

    private void check() {
        try {
            // first: it holds two connections at a time, before the lease connection is taken
            StartupChecks.Connections connections =
                    StartupChecks.connections(dataSource, config.directDataSource(), config.fastFailover());
            notificationMode = connections.notifications();
            if (connections.transactionPooled()) {
                store.useTransactionScopedSettings();
            } else if (!config.fastFailover()) {
                store.keepSessionUnchanged();
            }
            try (Connection c = dataSource.getConnection()) {
                StartupChecks.checkSchema(c, config.schema());
            }
        } catch (SQLException e) {
            throw SqlErrors.unavailable("could not connect to the database", e);
        }
        try {
            store.verify();
        } catch (SQLException e) {
            throw SqlErrors.unavailable("could not open the lease connection", e);
        }
    }

    /**
     * Ends every leadership and every live lock locally, releases every held lease and lock (waiting at most
     * renewDeadline for the leases) and stops the threads.
     */
    public void close() {
        // a plain loop, like the rest of the hand-off path: the first release is not held up by linking a stream
        List<Campaign> campaigns = loop.campaigns();
        CompletableFuture<?>[] leaving = new CompletableFuture<?>[campaigns.size()];
        for (int i = 0; i < leaving.length; i++) {
            leaving[i] = loop.leave(campaigns.get(i));
        }
        loop.locks().closeAll(); // the locks' releases go out while the loop releases the leases
        try {
            CompletableFuture.allOf(leaving).get(timings.renewDeadline().toMillis(), TimeUnit.MILLISECONDS);
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
            callbackPool.awaitTermination(timings.renewDeadline().toMillis(), TimeUnit.MILLISECONDS);
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
