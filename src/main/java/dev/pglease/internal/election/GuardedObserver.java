package dev.pglease.internal.election;

import dev.pglease.LeaseObserver;
import java.time.Duration;
import java.time.Instant;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The configured {@link LeaseObserver} as the election loop calls it: whatever the observer throws is logged and
 * ignored. Direct calls rather than wrapping each observation in a lambda, so that the first step-down or election
 * of a process links no new call site on its way to the database.
 */
final class GuardedObserver implements LeaseObserver {

    private static final Logger log = LoggerFactory.getLogger(GuardedObserver.class);

    private final LeaseObserver observer;

    GuardedObserver(LeaseObserver observer) {
        this.observer = observer;
    }

    @Override
    public void acquireAttempted(String leaseName, boolean granted, long token, Duration latency) {
        try {
            observer.acquireAttempted(leaseName, granted, token, latency);
        } catch (RuntimeException | Error e) {
            threw(e);
        }
    }

    @Override
    public void renewed(String leaseName, long token, Duration latency) {
        try {
            observer.renewed(leaseName, token, latency);
        } catch (RuntimeException | Error e) {
            threw(e);
        }
    }

    @Override
    public void acquireAttempted(String leaseName, boolean granted, long token, Duration latency, Instant sentAt) {
        try {
            observer.acquireAttempted(leaseName, granted, token, latency, sentAt);
        } catch (RuntimeException | Error e) {
            threw(e);
        }
    }

    @Override
    public void renewed(String leaseName, long token, Duration latency, Instant sentAt) {
        try {
            observer.renewed(leaseName, token, latency, sentAt);
        } catch (RuntimeException | Error e) {
            threw(e);
        }
    }

    @Override
    public void renewFailed(String leaseName, long token, boolean lost, Throwable cause) {
        try {
            observer.renewFailed(leaseName, token, lost, cause);
        } catch (RuntimeException | Error e) {
            threw(e);
        }
    }

    @Override
    public void steppedDown(String leaseName, long token, String reason) {
        try {
            observer.steppedDown(leaseName, token, reason);
        } catch (RuntimeException | Error e) {
            threw(e);
        }
    }

    @Override
    public void released(String leaseName, long token) {
        try {
            observer.released(leaseName, token);
        } catch (RuntimeException | Error e) {
            threw(e);
        }
    }

    @Override
    public void databaseError(String leaseName, Throwable cause) {
        try {
            observer.databaseError(leaseName, cause);
        } catch (RuntimeException | Error e) {
            threw(e);
        }
    }

    private static void threw(Throwable e) {
        log.warn("pglease: a LeaseObserver threw; ignored", e);
    }
}
