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
import org.springframework.context.SmartLifecycle;

/**
 * The application's leader election as a Spring bean: it starts campaigning for its lease when the application
 * context has started (so callbacks never reach half-initialised beans) and releases the lease when the context
 * stops or closes, before the {@code DataSource} goes away, so that a standby takes over at once.
 *
 * <p>{@link LeaderListener} beans in the context are told about every grant and revocation; {@link LeaderOnly}
 * methods run only while {@link #isLeader()}.
 */
public class LeaderElection implements SmartLifecycle {

    private final PgLease pglease;
    private final String leaseName;
    private final Supplier<List<LeaderListener>> listeners;
    private volatile Elector elector;

    /**
     * @param listeners looked up at every callback, so that listener beans may themselves depend on this bean
     */
    public LeaderElection(PgLease pglease, String leaseName, Supplier<List<LeaderListener>> listeners) {
        this.pglease = Objects.requireNonNull(pglease, "pglease must not be null");
        this.leaseName = Objects.requireNonNull(leaseName, "leaseName must not be null");
        this.listeners = Objects.requireNonNull(listeners, "listeners must not be null");
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

    @Override
    public synchronized void start() {
        if (elector == null) {
            elector = pglease.elector(leaseName, new Dispatch());
        }
    }

    /** Stops campaigning and releases the lease if held. */
    @Override
    public synchronized void stop() {
        Elector e = elector;
        elector = null;
        if (e != null) {
            e.close();
        }
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

    private final class Dispatch implements LeaderListener {
        @Override
        public void onElected(Leadership leadership) {
            for (LeaderListener l : listeners.get()) {
                l.onElected(leadership);
            }
        }

        @Override
        public void onRevoked(Leadership leadership) {
            for (LeaderListener l : listeners.get()) {
                l.onRevoked(leadership);
            }
        }
    }

    @Override
    public String toString() {
        return "LeaderElection{lease=" + leaseName + ", leader=" + isLeader() + "}";
    }
}
