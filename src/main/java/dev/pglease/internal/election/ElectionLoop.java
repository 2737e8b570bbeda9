package dev.pglease.internal.election;

import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.LeaseObserver;
import dev.pglease.Ticker;
import dev.pglease.internal.store.LeaseStore;
import dev.pglease.internal.store.NotificationListener;
import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Secrets;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.random.RandomGenerator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The election state machine of one process, for all the leases it campaigns for, top to bottom.
 *
 * <p>Every lease has a {@link Campaign} in one of four phases:
 * <pre>
 *   STANDBY --acquire granted--> LEADER --deadline passed / renew lost--> STANDBY
 *      |   ^                        |   ^                                    |
 *      |   |                        |   +--- resume renewal answered in time-+ (same token; deadline only)
 *      |   +------------------------|------- resume renewal late: release ---+
 *      +-------- close() ---------> CLOSING --released (or gave up)--> removed
 * </pre>
 * A leader that steps down at its deadline (its renewal answered late, or not yet) keeps no leadership, but the
 * database may still list it: one more renewal of the same token, sent at once, decides. Answered in time, it leads
 * again with that token (the lease never expired in the database, so nobody else held it); answered late, it gives
 * the lease back; refused, it is a standby. A starved process thus pauses its leadership instead of handing it over.
 * One thread runs {@link #runOnce()} in a loop: it releases what must be released, renews every due lease in one
 * batched statement, and tries to acquire every due lease, then sleeps until the next due time or a wake-up
 * (a NOTIFY that a lease was released, a new campaign, a close). A separate timer steps a leader down at its
 * local deadline even while the loop thread is blocked in a statement; {@link Leadership#isValid()} does not
 * depend on either thread, it compares the ticker with the deadline.
 *
 * <p>Deadlines come from the ticker reading taken <em>before</em> a statement was sent (see {@link Timing}).
 * Statements run outside the lock; their answers are applied under it only if the campaign is still in the state
 * it was in when the statement was sent.
 */
public final class ElectionLoop implements AutoCloseable, NotificationListener.Receiver {

    private static final Logger log = LoggerFactory.getLogger(ElectionLoop.class);

    enum Phase {
        STANDBY,
        LEADER,
        CLOSING
    }

    /** The state of one lease in this process. Guarded by the loop's lock; read from outside through its accessors. */
    public static final class Campaign {
        final String name;
        final LeaderListener listener;
        final Executor callbacks;
        final CompletableFuture<Void> closed = new CompletableFuture<>();
        Phase phase = Phase.STANDBY;
        long nextAt;
        volatile Grant leadership;
        long releaseToken;
        /**
         * A token the database may still list for this process after it stepped down at its deadline (a renewal
         * answered late, or not yet): one more renewal decides whether it leads again with it or gives it back.
         */
        long resumeToken;

        volatile int failures;
        volatile boolean reachable = true;
        volatile String observedHolder;
        /**
         * Counts the notices that the lease may have been released (a release notification, or notifications back
         * after an outage). An acquire sent before the latest one may carry an older answer (the previous holder and
         * its expiry): it must not put off the look the notice asked for.
         */
        volatile long releaseNotices;

        Campaign(String name, LeaderListener listener, Executor callbacks, long now) {
            this.name = name;
            this.listener = listener;
            this.callbacks = callbacks;
            this.nextAt = now;
        }

        /** The lease this campaign is for. */
        public String name() {
            return name;
        }

        /** The current grant, or {@code null} while this process does not lead (it may also have expired). */
        public Leadership leadership() {
            return leadership;
        }

        /** Completes once the campaign has ended (left and released, or the loop closed). */
        public CompletableFuture<Void> closed() {
            return closed;
        }

        /** Whether the database answered the campaign's last statement. */
        public boolean reachable() {
            return reachable;
        }

        /** The holder the database reported at the last acquire attempt, or {@code null}. */
        public String observedHolder() {
            return observedHolder;
        }
    }

    /**
     * A call of the listener on the campaign's serial executor. A class rather than a lambda, like the other steps
     * between a statement's answer and the listener ({@link GuardedObserver}, {@link #deadlineCheck}): the first
     * election of a process links no call site on the way.
     */
    private record ListenerCall(LeaderListener listener, Leadership leadership, boolean elected) implements Runnable {
        @Override
        public void run() {
            if (elected) {
                listener.onElected(leadership);
            } else {
                listener.onRevoked(leadership);
            }
        }
    }

    private final LeaseStore store;
    private final String holder;
    private final Ticker ticker;
    private final java.time.InstantSource wallClock;
    private final Timing timing;
    private final Duration ttl;
    private final GuardedObserver observer;
    /** False with the default no-op observer: the renewal loop then builds no per-lease observation. */
    private final boolean observing;

    private final Executor callbackPool;
    private final ScheduledExecutorService deadlineTimer;
    private final Runnable deadlineCheck = this::checkDeadlines;

    private final Object lock = new Object();
    private final Map<String, Campaign> campaigns = new LinkedHashMap<>();
    private boolean wakeRequested;
    private volatile boolean notificationsHealthy;
    private volatile boolean stopped;
    private Thread thread;

    /**
     * @param random        jitter of standby wake-ups and backoffs
     * @param deadlineTimer steps leaders down at their deadline while the loop thread is blocked; {@code null}
     *                      when a test drives the loop by hand
     */
    public ElectionLoop(
            LeaseStore store,
            String holder,
            LeaseConfig config,
            RandomGenerator random,
            Executor callbackPool,
            ScheduledExecutorService deadlineTimer) {
        this.store = store;
        this.holder = holder;
        this.ticker = config.ticker();
        this.wallClock = config.wallClock();
        this.timing = new Timing(config, random);
        this.ttl = config.leaseDuration();
        this.observer = new GuardedObserver(config.observer());
        this.observing = config.observer() != LeaseObserver.NONE;
        this.callbackPool = callbackPool;
        this.deadlineTimer = deadlineTimer;
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

    // ---------------------------------------------------------------- campaigns

    public Campaign join(String name, LeaderListener listener) {
        synchronized (lock) {
            if (stopped) {
                throw new LeaseException(LeaseException.Reason.CLOSED, "this PgLease is closed");
            }
            if (campaigns.containsKey(name)) {
                throw new IllegalStateException("this PgLease already has an elector for lease " + Names.quote(name)
                        + "; close it first or share it");
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
            if (c.phase != Phase.CLOSING) {
                if (c.phase == Phase.LEADER) {
                    stepDown(c, "released", true);
                } else if (c.resumeToken != 0) {
                    c.releaseToken = c.resumeToken;
                    c.resumeToken = 0;
                }
                c.phase = Phase.CLOSING;
                c.nextAt = ticker.read();
                if (c.releaseToken == 0) {
                    finish(c);
                }
                wake();
            }
            return c.closed;
        }
    }

    /** A standby whose lease was released is woken at once; a leader that lost its lease renews at once. */
    @Override
    public void leaseChanged(String name, String newHolder) {
        synchronized (lock) {
            Campaign c = campaigns.get(name);
            if (c == null) {
                return;
            }
            long now = ticker.read();
            if (c.phase == Phase.STANDBY && newHolder == null) {
                c.releaseNotices++;
                c.nextAt = now;
                wake();
            } else if (c.phase == Phase.LEADER && !holder.equals(newHolder)) {
                c.nextAt = now;
                wake();
            }
        }
    }

    @Override
    public void notificationsHealthy(boolean healthy) {
        boolean was = notificationsHealthy;
        notificationsHealthy = healthy;
        if (healthy && !was) {
            // A release may have been missed while notifications were down: every standby looks again.
            synchronized (lock) {
                long now = ticker.read();
                for (Campaign c : campaigns.values()) {
                    if (c.phase == Phase.STANDBY) {
                        c.releaseNotices++;
                        if (c.nextAt - now > 0) {
                            c.nextAt = now;
                        }
                    }
                }
                wake();
            }
        }
    }

    // ---------------------------------------------------------------- one turn of the loop

    /** Does all due work and returns the ticker time of the next due work. */
    long runOnce() {
        List<Campaign> toRelease = new ArrayList<>();
        List<Campaign> toRenew = new ArrayList<>();
        List<Grant> renewing = new ArrayList<>();
        List<Campaign> toAcquire = new ArrayList<>();
        List<Campaign> toResume = new ArrayList<>();
        long turnStart;
        synchronized (lock) {
            long now = ticker.read();
            turnStart = now;
            stepDownExpired(now);
            for (Campaign c : campaigns.values()) {
                if (c.nextAt - now > 0) {
                    continue;
                }
                if (c.releaseToken != 0) {
                    toRelease.add(c);
                } else if (c.phase == Phase.LEADER) {
                    toRenew.add(c);
                    renewing.add(c.leadership);
                } else if (c.phase == Phase.STANDBY && c.resumeToken != 0) {
                    toResume.add(c);
                } else if (c.phase == Phase.STANDBY) {
                    toAcquire.add(c);
                }
            }
            if (!toRenew.isEmpty()) {
                // Every other lease held rides along in the same statement, so all of a node's leases converge on
                // one renew statement per retry period however their grants were spread in time. Renewing early is
                // safe: the new deadline counts from this statement's send time.
                for (Campaign c : campaigns.values()) {
                    if (c.phase == Phase.LEADER && c.releaseToken == 0 && c.nextAt - now > 0 && c.leadership != null) {
                        toRenew.add(c);
                        renewing.add(c.leadership);
                    }
                }
            }
        }
        for (Campaign c : toRelease) {
            release(c);
        }
        if (!toRenew.isEmpty()) {
            renew(toRenew, renewing);
        }
        for (Campaign c : toResume) {
            resume(c);
        }
        long acquireBudget = timing.retryPeriodNanos() / 2;
        for (Campaign c : toAcquire) {
            // Many acquires in one turn must not delay the renewals of leases already held: the rest of the
            // due standbys go first in the next turn, right after the renewals.
            if (stopped || ticker.read() - turnStart > acquireBudget) {
                break;
            }
            acquire(c);
        }
        synchronized (lock) {
            long now = ticker.read();
            stepDownExpired(now);
            long next = now + timing.retryPeriodNanos();
            for (Campaign c : campaigns.values()) {
                if (c.nextAt - next < 0) {
                    next = c.nextAt;
                }
                Grant l = c.leadership;
                if (c.phase == Phase.LEADER && l != null && l.deadline() - next < 0) {
                    next = l.deadline();
                }
            }
            return next;
        }
    }

    /** Steps down every leader whose local deadline has passed. Called by the loop and by the deadline timer. */
    void checkDeadlines() {
        synchronized (lock) {
            stepDownExpired(ticker.read());
        }
    }

    private void stepDownExpired(long now) {
        for (Campaign c : campaigns.values()) {
            if (c.phase == Phase.LEADER && c.leadership.deadlinePassed(now)) {
                long token = c.leadership.token();
                stepDown(c, "its renew deadline passed without a successful renewal", false);
                c.phase = Phase.STANDBY;
                c.resumeToken = token;
                c.nextAt = now;
                wake();
            }
        }
    }

    private void acquire(Campaign c) {
        long noticesBefore = c.releaseNotices;
        long sent = ticker.read();
        long sentWall = wallClock.millis();
        LeaseStore.Acquired answer;
        try {
            answer = store.acquire(c.name, holder, ttl);
        } catch (SQLException | RuntimeException e) {
            long now = ticker.read();
            synchronized (lock) {
                c.failures++;
                c.reachable = false;
                if (c.phase == Phase.STANDBY) {
                    c.nextAt = timing.acquireRetry(now, c.failures);
                }
            }
            databaseError(c.name, "acquire", e);
            return;
        }
        long now = ticker.read();
        observer.acquireAttempted(c.name, answer.granted(), answer.token(), Duration.ofNanos(now - sent));
        boolean releaseNow = false;
        synchronized (lock) {
            c.failures = 0;
            c.reachable = true;
            c.observedHolder = answer.holder();
            if (!answer.granted()
                    && holder.equals(answer.holder())
                    && c.phase == Phase.STANDBY
                    && c.releaseToken == 0) {
                // A grant this process was never told about: an earlier acquire committed but its answer was lost
                // (connection reset, timeout). Give it back now rather than leave the lease unled until it expires.
                c.releaseToken = answer.token();
                c.nextAt = now;
                releaseNow = true;
                log.warn(
                        "pglease: lease {} lists this process as holder with token {}, a grant it never received; "
                                + "releasing it",
                        Names.quote(c.name),
                        answer.token());
            } else if (!answer.granted()) {
                if (c.phase == Phase.STANDBY) {
                    c.nextAt = c.releaseNotices != noticesBefore
                            ? now
                            : timing.standbyWake(
                                    now, TimeUnit.MILLISECONDS.toNanos(answer.waitMillis()), notificationsHealthy);
                }
                return;
            } else if (c.phase != Phase.STANDBY || answeredLate(sent, sentWall, now)) {
                // Closed while the statement was in flight, or the answer came too late to be trusted (e.g. the
                // process was paused between sending and reading): give the grant straight back.
                c.releaseToken = answer.token();
                c.nextAt = now;
                releaseNow = c.phase != Phase.STANDBY;
                log.info(
                        "pglease: lease {} token {} was granted but can not be used ({}); releasing it",
                        Names.quote(c.name),
                        answer.token(),
                        c.phase != Phase.STANDBY ? "closing" : "the answer arrived after the renew deadline");
            } else {
                lead(c, answer.token(), sent, sentWall, now);
            }
        }
        if (releaseNow) {
            // The elector may already be gone from the loop: release here rather than on a later turn.
            release(c);
        }
    }

    /**
     * After a step-down at the deadline (a late or missing renewal answer, e.g. a starved or paused process), one
     * more renewal of the same token: answered in time, this process leads again with that token (the database
     * never let the lease expire, so nobody else held it in between); answered late, it gives the lease back; lost,
     * it campaigns as a standby. A database error gives the lease back as before.
     */
    private void resume(Campaign c) {
        long token;
        synchronized (lock) {
            token = c.resumeToken;
            if (token == 0 || c.phase != Phase.STANDBY) {
                return;
            }
        }
        long sent = ticker.read();
        long sentWall = wallClock.millis();
        List<String> renewed;
        try {
            renewed = store.renew(holder, List.of(new LeaseStore.Held(c.name, token, LeaseStore.ttlMillis(ttl))))
                    .renewed();
        } catch (SQLException | RuntimeException e) {
            long now = ticker.read();
            synchronized (lock) {
                if (c.resumeToken == token) {
                    c.resumeToken = 0;
                    c.releaseToken = token;
                }
                c.failures++;
                c.reachable = false;
                c.nextAt = timing.errorBackoff(now, c.failures);
            }
            observer.renewFailed(c.name, token, false, e);
            databaseError(c.name, "renew", e);
            return;
        }
        long now = ticker.read();
        boolean ok = renewed.contains(c.name);
        if (ok) {
            Duration latency = Duration.ofNanos(now - sent);
            observer.renewed(c.name, token, latency);
        } else {
            observer.renewFailed(c.name, token, true, null);
        }
        synchronized (lock) {
            c.failures = 0;
            c.reachable = true;
            if (c.resumeToken != token || c.phase != Phase.STANDBY) {
                return; // left while the statement was in flight: leave() turned it into a release
            }
            c.resumeToken = 0;
            c.nextAt = now;
            if (!ok) {
                return;
            }
            if (answeredLate(sent, sentWall, now)) {
                c.releaseToken = token;
                return;
            }
            log.info(
                    "pglease: {} leads lease {} again with token {}: the renewal after its step-down was answered in "
                            + "time",
                    holder,
                    Names.quote(c.name),
                    token);
            lead(c, token, sent, sentWall, now);
        }
    }

    /** Under the lock: {@code c} leads with {@code token}, granted or renewed by a statement sent at {@code sent}. */
    private void lead(Campaign c, long token, long sent, long sentWall, long now) {
        long deadline = timing.deadline(sent);
        Grant l = new Grant(c.name, holder, token, ticker, deadline, wallClock, timing.wallDeadline(sentWall));
        c.leadership = l;
        c.phase = Phase.LEADER;
        c.nextAt = timing.nextRenewal(sent);
        scheduleDeadlineCheck(deadline - now);
        c.callbacks.execute(new ListenerCall(c.listener, l, true));
    }

    /** Whether the answer to a statement sent at {@code sent} came after the deadline it would give (either clock). */
    private boolean answeredLate(long sent, long sentWall, long now) {
        return timing.deadline(sent) - now <= 0 || wallClock.millis() >= timing.wallDeadline(sentWall);
    }

    private void renew(List<Campaign> due, List<Grant> sentFor) {
        List<LeaseStore.Held> held = new ArrayList<>(due.size());
        long ttlMillis = LeaseStore.ttlMillis(ttl);
        for (int i = 0; i < due.size(); i++) {
            held.add(new LeaseStore.Held(due.get(i).name, sentFor.get(i).token(), ttlMillis));
        }
        long sent = ticker.read();
        long sentWall = wallClock.millis();
        List<String> renewedNames;
        try {
            LeaseStore.Renewal renewal = store.renew(holder, held);
            renewedNames = renewal.renewed();
        } catch (SQLException | RuntimeException e) {
            long now = ticker.read();
            synchronized (lock) {
                for (int i = 0; i < due.size(); i++) {
                    Campaign c = due.get(i);
                    c.reachable = false;
                    if (c.leadership == sentFor.get(i) && c.phase == Phase.LEADER) {
                        c.failures++;
                        c.nextAt = timing.renewRetry(now, c.failures, c.leadership.deadline());
                    }
                    long token = sentFor.get(i).token();
                    observer.renewFailed(c.name, token, false, e);
                }
            }
            databaseError(due.size() == 1 ? due.get(0).name : due.size() + " leases", "renew", e);
            return;
        }
        long now = ticker.read();
        Set<String> renewed = renewedNames.size() == due.size() ? null : new HashSet<>(renewedNames);
        long deadline = timing.deadline(sent);
        Duration latency = Duration.ofNanos(now - sent);
        boolean scheduled = false;
        synchronized (lock) {
            for (int i = 0; i < due.size(); i++) {
                Campaign c = due.get(i);
                Grant l = sentFor.get(i);
                c.reachable = true;
                boolean ok = renewed == null || renewed.contains(c.name);
                boolean current = c.leadership == l && c.phase == Phase.LEADER && !l.isRevoked();
                if (!ok) {
                    observer.renewFailed(c.name, l.token(), true, null);
                    if (current) {
                        stepDown(c, "the database no longer lists this holder with token " + l.token(), false);
                        c.phase = Phase.STANDBY;
                        c.nextAt = now;
                    }
                } else if (!current) {
                    if (c.resumeToken == l.token()) {
                        // Stepped down at the deadline while this renewal was in flight: the database still lists
                        // us, and the resume renewal (next turn) decides whether to lead again or give it back.
                        c.nextAt = now;
                    } else if (c.releaseToken == 0 && (c.leadership == l || c.leadership == null)) {
                        // Stepped down while the renewal was in flight: the database still lists us, so release.
                        c.releaseToken = l.token();
                        c.nextAt = now;
                    }
                } else if (answeredLate(sent, sentWall, now)) {
                    stepDown(c, "the renewal was answered after the renew deadline", false);
                    c.phase = Phase.STANDBY;
                    c.resumeToken = l.token();
                    c.nextAt = now;
                } else {
                    l.extend(deadline, timing.wallDeadline(sentWall));
                    c.failures = 0;
                    c.nextAt = timing.nextRenewal(sent);
                    scheduled = true;
                    if (observing) {
                        observer.renewed(c.name, l.token(), latency);
                    }
                }
            }
        }
        if (scheduled) {
            scheduleDeadlineCheck(deadline - now);
        }
    }

    private void release(Campaign c) {
        long token;
        synchronized (lock) {
            token = c.releaseToken;
            if (token == 0) {
                return;
            }
        }
        try {
            boolean released = store.release(c.name, holder, token);
            if (released) {
                observer.released(c.name, token);
            }
            synchronized (lock) {
                if (c.releaseToken == token) {
                    c.releaseToken = 0;
                }
                c.failures = 0;
                if (c.phase == Phase.CLOSING) {
                    finish(c);
                } else {
                    c.nextAt = ticker.read();
                }
            }
        } catch (SQLException | RuntimeException e) {
            long now = ticker.read();
            synchronized (lock) {
                c.failures++;
                c.reachable = false;
                c.nextAt = timing.errorBackoff(now, c.failures);
            }
            databaseError(c.name, "release", e);
        }
    }

    /**
     * Ends the current leadership locally (so {@link Leadership#isValid()} is false from now on) and tells the
     * listener. With {@code release}, the loop will also give the lease back in the database.
     */
    private void stepDown(Campaign c, String reason, boolean release) {
        Grant l = c.leadership;
        c.leadership = null;
        if (l == null || !l.revoke(reason)) {
            return;
        }
        if (release) {
            c.releaseToken = l.token();
        }
        log.info("pglease: {} stepped down from lease {} token {}: {}", holder, Names.quote(c.name), l.token(), reason);
        observer.steppedDown(c.name, l.token(), reason);
        c.callbacks.execute(new ListenerCall(c.listener, l, false));
    }

    private void finish(Campaign c) {
        campaigns.remove(c.name, c);
        c.closed.complete(null);
    }

    // ---------------------------------------------------------------- the thread

    private void run() {
        while (!stopped) {
            long next;
            try {
                next = runOnce();
            } catch (RuntimeException | Error e) {
                // An Error here comes from a bug (ours or an observer's), not from the JVM running out of something
                // it can recover by stopping: elections must go on, and health must not report a dead thread as up.
                log.error("pglease: unexpected error in the election loop; continuing", e);
                next = ticker.read() + timing.retryPeriodNanos() / 4;
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

    private void wake() {
        synchronized (lock) {
            wakeRequested = true;
            lock.notifyAll();
        }
    }

    private void scheduleDeadlineCheck(long delayNanos) {
        if (deadlineTimer != null && !deadlineTimer.isShutdown()) {
            try {
                deadlineTimer.schedule(deadlineCheck, Math.max(0, delayNanos) + 1_000_000, TimeUnit.NANOSECONDS);
            } catch (java.util.concurrent.RejectedExecutionException e) {
                log.debug("pglease: deadline timer already stopped");
            }
        }
    }

    private void databaseError(String what, String statement, Throwable e) {
        log.warn(
                "pglease: {} of {} failed: {}",
                statement,
                what instanceof String ? Names.quote(what) : what,
                Secrets.redact(String.valueOf(e.getMessage())));
        observer.databaseError(what, e);
    }

    /** Whether the election thread runs: renews what is held and campaigns for the rest. */
    public boolean isRunning() {
        Thread t = thread;
        return t != null && t.isAlive() && !stopped;
    }

    // ---------------------------------------------------------------- shutdown

    /** Stops the loop thread (after campaigns were left). */
    @Override
    public void close() {
        synchronized (lock) {
            stopped = true;
            lock.notifyAll();
        }
        Thread t = thread;
        if (t != null && t != Thread.currentThread()) {
            try {
                t.join(TimeUnit.NANOSECONDS.toMillis(timing.retryPeriodNanos()) + 1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        synchronized (lock) {
            for (Campaign c : List.copyOf(campaigns.values())) {
                if (c.phase == Phase.LEADER) {
                    stepDown(c, "closed", false);
                }
                finish(c);
            }
        }
    }

    public List<Campaign> campaigns() {
        synchronized (lock) {
            return List.copyOf(campaigns.values());
        }
    }

    Phase phase(Campaign c) {
        synchronized (lock) {
            return c.phase;
        }
    }

    long nextAt(Campaign c) {
        synchronized (lock) {
            return c.nextAt;
        }
    }

    Grant leadership(Campaign c) {
        return c.leadership;
    }
}
