package dev.pglease.internal.election;

import dev.pglease.LeaderListener;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.LeaseObserver;
import dev.pglease.Ticker;
import dev.pglease.internal.election.CampaignState.Closed;
import dev.pglease.internal.store.LeaseStore;
import dev.pglease.internal.store.NotificationListener;
import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Timings;
import java.time.InstantSource;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.random.RandomGenerator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The runner of the election state machine for all the leases of one process: one thread, its wait, and what the
 * transitions ask for. Each turn ({@link #runOnce()}) re-reads the lease rows notifications named, then sends the
 * due statements (releases, one batched renewal, resume renewals, acquires; see {@link Turn}), and sleeps until the
 * next due time or a wake-up. A separate timer applies the deadline event while the thread is blocked in a
 * statement. Every state change goes through {@link Transitions} under one lock; every leadership change through
 * {@link Leaderships}. Statements run outside the lock.
 */
public final class ElectionLoop implements AutoCloseable, NotificationListener.Receiver {

    private static final Logger log = LoggerFactory.getLogger(ElectionLoop.class);

    final LeaseStore store;
    final String holder;
    final Ticker ticker;
    final InstantSource wallClock;
    final Timings timings;
    final GuardedObserver observer;
    /** False with the default no-op observer: renewals then build no per-lease observation. */
    final boolean observing;

    private final Waits waits;
    private final Leaderships leaderships;
    final LiveLocks locks;
    private final ScheduledExecutorService deadlineTimer;
    private final Runnable deadlineCheck = this::checkDeadlines;
    private final Executor callbackPool;
    private final Turn turn;

    final Object lock = new Object();
    final Map<String, Campaign> campaigns = new LinkedHashMap<>();
    private boolean wakeRequested;
    private volatile boolean notificationsHealthy;
    /**
     * Guarded by lock: notifications went down, or a statement went out before they first came up. Either way a
     * change may have been committed without a notification reaching this process, so when they come up, everything
     * looks again.
     */
    private boolean notificationsMissed;

    volatile boolean stopped;
    private Thread thread;
    private long armedAt;
    private boolean armed;

    /**
     * @param random        jitter of standby wake-ups and backoffs
     * @param deadlineTimer steps leaders down at their deadline while the loop thread is blocked; {@code null}
     *                      when a test drives the loop by hand
     */
    public ElectionLoop(
            LeaseStore store,
            String holder,
            LeaseConfig config,
            Timings timings,
            RandomGenerator random,
            Executor callbackPool,
            ScheduledExecutorService deadlineTimer) {
        this.store = store;
        this.holder = holder;
        this.ticker = config.ticker();
        this.wallClock = config.wallClock();
        this.timings = timings;
        this.waits = new Waits(timings, random);
        this.observer = new GuardedObserver(config.observer());
        this.observing = config.observer() != LeaseObserver.NONE;
        this.leaderships = new Leaderships(holder, ticker, observer, observing, this::handOverDone);
        this.callbackPool = callbackPool;
        this.deadlineTimer = deadlineTimer;
        this.locks = new LiveLocks(lock, campaigns::containsKey, this::wake);
        this.turn = new Turn(this);
    }

    public String holder() {
        return holder;
    }

    public void start() {
        Thread t = new Thread(this::run, "pglease-election " + holder);
        t.setDaemon(true);
        thread = t;
        t.start();
    }

    // ---------------------------------------------------------------- what other threads tell the loop

    /** Starts a campaign for {@code name}: it acquires at once. */
    public Campaign join(String name, LeaderListener listener) {
        synchronized (lock) {
            if (stopped) {
                throw new LeaseException(LeaseException.Reason.CLOSED, "this PgLease is closed");
            }
            if (campaigns.containsKey(name)) {
                throw new IllegalStateException("this PgLease already has an elector for lease " + Names.quote(name)
                        + "; close it first or share it");
            }
            if (locks.holds(name)) {
                throw new IllegalStateException("this PgLease holds a lock named " + Names.quote(name)
                        + ": an elector and a lock must not share a name");
            }
            Campaign c = new Campaign(name, listener, new SerialExecutor(callbackPool), ticker.read());
            campaigns.put(name, c);
            wake();
            return c;
        }
    }

    /** Stops campaigning: the leadership ends locally at once, then the loop releases the lease in the database. */
    public CompletableFuture<Void> leave(Campaign c) {
        synchronized (lock) {
            apply(c, new Event.Close(), ticker.read());
            wake();
            return c.closed;
        }
    }

    /**
     * Whether the campaign should hold its lease. An unwanted standby does not acquire; an unwanted leader hands the
     * lease over: its listener's {@code onRevoked} runs while the grant is still valid (it is renewed until the
     * listener returns), then the lease is released.
     */
    public void want(Campaign c, boolean wanted) {
        synchronized (lock) {
            if (c.wanted != wanted) {
                c.wanted = wanted;
                apply(c, new Event.WantedChanged(), ticker.read());
                wake();
            }
        }
    }

    private void handOverDone(Campaign c, Grant g) {
        synchronized (lock) {
            apply(c, new Event.HandOverDone(g), ticker.read());
            wake();
        }
    }

    /** A notification named lease {@code name}: its row is re-read soon, at most once per notice interval. */
    @Override
    public void notice(String name) {
        synchronized (lock) {
            Campaign c = campaigns.get(name);
            if (c != null) {
                apply(c, new Event.Notice(), ticker.read());
            }
            if (locks.notice(name)) {
                wake();
            }
        }
    }

    @Override
    public void notificationsHealthy(boolean healthy) {
        synchronized (lock) {
            notificationsHealthy = healthy;
            if (!healthy) {
                notificationsMissed = true;
            } else if (notificationsMissed) {
                notificationsMissed = false;
                long now = ticker.read();
                for (Campaign c : campaigns.values()) {
                    apply(c, new Event.Notice(), now);
                }
                locks.markAll();
                wake();
            }
        }
    }

    /** Under lock, before a turn's statements go out: whatever they read, a later change may not be notified. */
    void beforeStatements() {
        if (!notificationsHealthy) {
            notificationsMissed = true;
        }
    }

    /** Fast failover: the session lock of lease {@code name}'s holder was freed; a standby tries at once. */
    public void holderGone(String name) {
        synchronized (lock) {
            Campaign c = campaigns.get(name);
            if (c != null) {
                c.holderGone++;
                apply(c, new Event.HolderGone(), ticker.read());
                wake();
            }
        }
    }

    /** Every held lease's row is re-read soon (on the lease session: a dead session is found out). */
    public void lookAtHeldLeases() {
        synchronized (lock) {
            long now = ticker.read();
            for (Campaign c : campaigns.values()) {
                if (c.grant() != null) {
                    apply(c, new Event.Notice(), now);
                }
            }
        }
    }

    /**
     * The database no longer lets this process use {@code token} of lease {@code name} (a fence refused it, or the
     * fast-failover lease session that registered it ended): the elector's leadership or the lock with that token
     * ends at once. Returns whether one did.
     */
    public boolean lost(String name, long token, String reason) {
        boolean ended = false;
        synchronized (lock) {
            Campaign c = campaigns.get(name);
            if (c != null) {
                Grant before = c.grant();
                apply(c, new Event.Lost(token, reason), ticker.read());
                ended = before != null && before.token() == token && c.grant() != before;
                wake();
            }
        }
        return locks.lost(name, token, reason) || ended;
    }

    /**
     * This process may no longer use any grant of its campaigns: each held one, and each it stepped down from and could
     * resume, ends at once, as {@link #lost} ends one.
     */
    public void loseAll(String reason) {
        synchronized (lock) {
            long now = ticker.read();
            for (Campaign c : campaigns.values()) {
                long token;
                if (c.state() instanceof CampaignState.Leading l) {
                    token = l.grant().token();
                } else if (c.state() instanceof CampaignState.SteppedDown sd) {
                    token = sd.token();
                } else if (c.state() instanceof CampaignState.Releasing r && r.handingOver() != null) {
                    token = r.token();
                } else {
                    continue;
                }
                apply(c, new Event.Lost(token, reason), now);
            }
            wake();
        }
    }

    /** The live locks of this process, which the loop checks against the database. */
    public LiveLocks locks() {
        return locks;
    }

    // ---------------------------------------------------------------- the state machine, applied

    /** Under the lock: applies {@code e} to {@code c} at {@code now}; returns the statements it asks for. */
    List<Effect> apply(Campaign c, Event e, long now) {
        Transitions.Step step = Transitions.next(
                c.state,
                e,
                new Transitions.Context(
                        c.name,
                        holder,
                        waits,
                        ticker,
                        wallClock,
                        now,
                        wallClock.millis(),
                        c.wanted,
                        notificationsHealthy));
        c.state = step.state();
        List<Effect> sends = List.of();
        for (Effect effect : step.effects()) {
            if (leaderships.apply(c, effect)) {
                continue;
            }
            if (effect instanceof Effect.ArmDeadline a) {
                arm(a.at(), now);
            } else if (effect instanceof Effect.LookAgain) {
                if (!c.lookAgain) {
                    c.lookAgain = true;
                    wake();
                }
            } else if (effect instanceof Effect.Finished) {
                campaigns.remove(c.name, c);
                c.closed.complete(null);
            } else if (effect instanceof Effect.Log l) {
                if (l.warn()) {
                    log.warn("pglease: {}", l.message());
                } else {
                    log.info("pglease: {}", l.message());
                }
            } else {
                if (sends.isEmpty()) {
                    sends = new ArrayList<>(1);
                }
                sends.add(effect);
            }
        }
        return sends;
    }

    /** Steps down every leader whose local deadline has passed. Called by the loop and by the deadline timer. */
    void checkDeadlines() {
        synchronized (lock) {
            turn.stepDownExpired(ticker.read());
        }
    }

    private void arm(long at, long now) {
        if (deadlineTimer == null || deadlineTimer.isShutdown() || (armed && armedAt == at)) {
            return;
        }
        armed = true;
        armedAt = at;
        try {
            deadlineTimer.schedule(deadlineCheck, Math.max(0, at - now) + 1_000_000, TimeUnit.NANOSECONDS);
        } catch (RejectedExecutionException e) {
            log.debug("pglease: deadline timer already stopped");
        }
    }

    // ---------------------------------------------------------------- the thread

    /** Does all due work and returns the ticker time of the next due work. */
    long runOnce() {
        return turn.run();
    }

    private void run() {
        while (!stopped) {
            long next;
            try {
                next = runOnce();
            } catch (RuntimeException | Error e) {
                // An Error here comes from a bug (ours or an observer's), not from the JVM running out of something
                // it can recover by stopping: elections must go on, and health must not report a dead thread as up.
                log.error("pglease: unexpected error in the election loop; continuing", e);
                next = ticker.read() + timings.retryPeriod().toNanos() / 4;
            }
            synchronized (lock) {
                long wait = next - ticker.read();
                if (!wakeRequested && !stopped && wait > 0) {
                    try {
                        TimeUnit.NANOSECONDS.timedWait(lock, wait);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return;
                    }
                }
                wakeRequested = false;
            }
        }
    }

    void wake() {
        synchronized (lock) {
            wakeRequested = true;
            lock.notifyAll();
        }
    }

    /** Whether the election thread runs: renews what is held and campaigns for the rest. */
    public boolean isRunning() {
        Thread t = thread;
        return t != null && t.isAlive() && !stopped;
    }

    /** Stops the loop thread (after campaigns were left); a leadership still held ends locally. */
    @Override
    public void close() {
        synchronized (lock) {
            stopped = true;
            lock.notifyAll();
        }
        Thread t = thread;
        if (t != null && t != Thread.currentThread()) {
            try {
                t.join(timings.retryPeriod().toMillis() + 1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        synchronized (lock) {
            for (Campaign c : List.copyOf(campaigns.values())) {
                Grant g = c.grant();
                if (g != null) {
                    leaderships.apply(c, new Effect.Revoked(g, "closed"));
                }
                c.state = new Closed();
                campaigns.remove(c.name, c);
                c.closed.complete(null);
            }
        }
    }

    public List<Campaign> campaigns() {
        synchronized (lock) {
            return List.copyOf(campaigns.values());
        }
    }

    /** When the loop acts next for {@code c} (ticker): its next statement, or a re-read a notice asked for. */
    long nextAt(Campaign c) {
        synchronized (lock) {
            long now = ticker.read();
            long at = Transitions.dueAt(c.state, c.wanted)
                    .orElse(now + timings.retryPeriod().toNanos());
            if (c.lookAgain) {
                long read = turn.nextRead(now);
                at = read - at < 0 ? read : at;
            }
            return at;
        }
    }
}
