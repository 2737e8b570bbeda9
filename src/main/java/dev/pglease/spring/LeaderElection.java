package dev.pglease.spring;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.PgLease;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.ApplicationEventPublisher;
import org.springframework.context.ApplicationEventPublisherAware;
import org.springframework.context.SmartLifecycle;

/**
 * The application's leader election as a Spring bean: it starts campaigning for its lease when the application
 * context has started (so callbacks never reach half-initialised beans) and releases the lease when the context
 * stops or closes, before the {@code DataSource} goes away, so that a standby takes over at once.
 *
 * <p>{@link LeaderListener} beans in the context are told about every grant and revocation, and every grant and
 * revocation is also published as a {@link LeaseGrantedEvent} or {@link LeaseRevokedEvent}; {@link LeaderOnly}
 * methods run only while {@link #isLeader()}.
 *
 * <p>Graceful drain: when the context stops, leader work in flight ({@link LeaderOnly} methods, {@link Fenced}
 * methods and {@link FencedTransactionTemplate} transactions) may finish, for at most the drain timeout, while new
 * work is refused as on a standby; only then is the lease released, so a standby takes over right after the last
 * piece of work ended instead of refusing it halfway.
 */
public class LeaderElection implements SmartLifecycle, ApplicationEventPublisherAware {

    private static final Logger LOG = LoggerFactory.getLogger(LeaderElection.class);
    private final PgLease pglease;
    private final String leaseName;
    private final Supplier<List<LeaderListener>> listeners;
    private final Duration drainTimeout;
    private final Object work = new Object();
    private int inFlight; // guarded by work
    private boolean draining; // guarded by work
    private volatile ApplicationEventPublisher publisher;
    private volatile Elector elector;

    /**
     * With a drain timeout of 10 seconds.
     *
     * @param listeners looked up at every callback, so that listener beans may themselves depend on this bean
     */
    public LeaderElection(PgLease pglease, String leaseName, Supplier<List<LeaderListener>> listeners) {
        this(pglease, leaseName, listeners, Duration.ofSeconds(10));
    }

    /**
     * @param listeners    looked up at every callback, so that listener beans may themselves depend on this bean
     * @param drainTimeout how long {@link #stop()} lets leader work in flight finish before releasing the lease
     *                     (zero: release at once)
     * @throws IllegalArgumentException if the drain timeout is negative
     */
    public LeaderElection(
            PgLease pglease, String leaseName, Supplier<List<LeaderListener>> listeners, Duration drainTimeout) {
        this.pglease = Objects.requireNonNull(pglease, "pglease must not be null");
        this.leaseName = Objects.requireNonNull(leaseName, "leaseName must not be null");
        this.listeners = Objects.requireNonNull(listeners, "listeners must not be null");
        Objects.requireNonNull(drainTimeout, "drainTimeout must not be null");
        if (drainTimeout.isNegative()) {
            throw new IllegalArgumentException(
                    "drainTimeout (pglease.election.drain-timeout) must be zero or " + "positive, got " + drainTimeout);
        }
        this.drainTimeout = drainTimeout;
    }

    @Override
    public void setApplicationEventPublisher(ApplicationEventPublisher applicationEventPublisher) {
        this.publisher = applicationEventPublisher;
    }

    /** How long stopping lets leader work in flight finish before the lease is released. */
    public Duration drainTimeout() {
        return drainTimeout;
    }

    /** The lease this application campaigns for. */
    public String leaseName() {
        return leaseName;
    }

    /** Whether this process leads now (local deadline; no database round trip). */
    public boolean isLeader() {
        Elector e = elector;
        return e != null && e.isLeader();
    }

    /** The current grant, with its fencing token, while this process leads. */
    public Optional<Leadership> leadership() {
        Elector e = elector;
        return e == null ? Optional.empty() : e.leadership();
    }

    /** Waits until this process leads, or the timeout passes. */
    public Optional<Leadership> awaitLeadership(Duration timeout) throws InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        while (elector == null && System.nanoTime() - end < 0) {
            Thread.sleep(5);
        }
        Elector e = elector;
        return e == null ? Optional.empty() : e.awaitLeadership(Duration.ofNanos(Math.max(0, end - System.nanoTime())));
    }

    /** The running elector, while started (for health checks and metrics). */
    public Optional<Elector> elector() {
        return Optional.ofNullable(elector);
    }

    /**
     * Starts a piece of leader work: the current grant, counted as in flight until {@link #endWork()}; empty (and
     * nothing counted) when this process does not lead or the election is draining.
     */
    Optional<Leadership> beginWork() {
        synchronized (work) {
            if (draining) {
                return Optional.empty();
            }
            Optional<Leadership> leadership = leadership();
            if (leadership.isPresent()) {
                inFlight++;
            }
            return leadership;
        }
    }

    /** Ends a piece of leader work begun with a grant from {@link #beginWork()}. */
    void endWork() {
        synchronized (work) {
            inFlight--;
            work.notifyAll();
        }
    }

    /** Leader work in flight now. */
    int workInFlight() {
        synchronized (work) {
            return inFlight;
        }
    }

    @Override
    public synchronized void start() {
        if (elector == null) {
            synchronized (work) {
                draining = false;
            }
            elector = pglease.elector(leaseName, new Dispatch());
        }
    }

    /**
     * Drains, then stops campaigning and releases the lease if held: refuses new leader work at once, waits while
     * work is in flight and this process still leads, for at most the drain timeout, then releases.
     */
    @Override
    public synchronized void stop() {
        drain();
        Elector e = elector;
        elector = null;
        if (e != null) {
            e.close();
        }
    }

    private void drain() {
        long end = System.nanoTime() + drainTimeout.toNanos();
        synchronized (work) {
            draining = true;
            if (inFlight > 0 && isLeader()) {
                LOG.info(
                        "pglease: draining {} leader task(s) of lease {} before releasing it (at most {})",
                        inFlight,
                        leaseName,
                        drainTimeout);
            }
            try {
                while (inFlight > 0 && isLeader()) {
                    long left = end - System.nanoTime();
                    if (left <= 0) {
                        LOG.warn(
                                "pglease: drain timeout {} passed with {} leader task(s) of lease {} in flight; "
                                        + "releasing it anyway",
                                drainTimeout,
                                inFlight,
                                leaseName);
                        return;
                    }
                    // woken by endWork; re-checks leadership at least every 20 ms
                    work.wait(Math.max(1, Math.min(20, left / 1_000_000)));
                }
            } catch (InterruptedException e) {
                LOG.warn(
                        "pglease: drain of lease {} interrupted with {} leader task(s) in flight", leaseName, inFlight);
                Thread.currentThread().interrupt();
            }
        }
    }

    /**
     * Gives up the lease on an operator's request: drains like {@link #stop()}, releases, and campaigns again after
     * {@code pause} (a standby, woken by the release, takes over meanwhile).
     */
    synchronized void releaseAndRejoin(Duration pause) throws InterruptedException {
        stop();
        Thread.sleep(pause.toMillis());
        start();
    }

    @Override
    public boolean isRunning() {
        return elector != null;
    }

    /**
     * {@code DEFAULT_PHASE - 1000}: on shutdown, beans of the default phase (such as Spring's task scheduler) stop
     * first, then this releases the lease, and only then do lower phases (such as a web server's graceful shutdown)
     * and the data source go away.
     */
    @Override
    public int getPhase() {
        return DEFAULT_PHASE - 1000;
    }

    /**
     * Calls every {@link LeaderListener} bean, then publishes the event: each listener apart, as the core calls its
     * own listeners, so one that throws (logged) neither silences the others nor the event.
     */
    private final class Dispatch implements LeaderListener {
        @Override
        public void onElected(Leadership leadership) {
            for (LeaderListener l : listeners.get()) {
                try {
                    l.onElected(leadership);
                } catch (RuntimeException | Error e) {
                    threw(l, "onElected", leadership, e);
                }
            }
            publish(new LeaseGrantedEvent(LeaderElection.this, leadership), leadership);
        }

        @Override
        public void onRevoked(Leadership leadership) {
            for (LeaderListener l : listeners.get()) {
                try {
                    l.onRevoked(leadership);
                } catch (RuntimeException | Error e) {
                    threw(l, "onRevoked", leadership, e);
                }
            }
            publish(new LeaseRevokedEvent(LeaderElection.this, leadership), leadership);
        }

        private void publish(Object event, Leadership leadership) {
            ApplicationEventPublisher p = publisher;
            if (p == null) {
                return;
            }
            try {
                p.publishEvent(event);
            } catch (RuntimeException | Error e) {
                LOG.error(
                        "pglease: a listener of {} (lease {}, token {}) threw; the election goes on",
                        event.getClass().getSimpleName(),
                        leadership.leaseName(),
                        leadership.token(),
                        e);
            }
        }

        private void threw(LeaderListener listener, String call, Leadership leadership, Throwable e) {
            LOG.error(
                    "pglease: LeaderListener {}.{} (lease {}, token {}) threw; the other listeners and the event "
                            + "still hear of it, and the election goes on",
                    listener,
                    call,
                    leadership.leaseName(),
                    leadership.token(),
                    e);
        }
    }

    @Override
    public String toString() {
        return "LeaderElection{lease=" + leaseName + ", leader=" + isLeader() + "}";
    }
}
