package dev.pglease.internal.election;

import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.Ticker;
import dev.pglease.internal.util.Names;
import java.time.Duration;
import java.time.Instant;
import java.util.function.BiConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one place where a leadership begins, is extended or ends: the grant is changed here (so that
 * {@link Leadership#isValid()} answers accordingly from this moment), and the listener and the observer are told
 * here. Listener calls run on the campaign's serial executor, never on the caller's thread: a slow or throwing
 * listener can not stall renewals.
 */
final class Leaderships {

    private static final Logger log = LoggerFactory.getLogger(Leaderships.class);

    private final String holder;
    private final Ticker ticker;
    private final GuardedObserver observer;
    /** False with the default no-op observer: renewals then build no per-lease observation. */
    private final boolean observing;
    /** Told when a hand-over's listener returned (from the callback thread). */
    private final BiConsumer<Campaign, Grant> handOverDone;

    Leaderships(
            String holder,
            Ticker ticker,
            GuardedObserver observer,
            boolean observing,
            BiConsumer<Campaign, Grant> handOverDone) {
        this.holder = holder;
        this.ticker = ticker;
        this.observer = observer;
        this.observing = observing;
        this.handOverDone = handOverDone;
    }

    /**
     * Applies a leadership effect of campaign {@code c}; returns false when {@code effect} is not about a
     * leadership (the loop applies those).
     */
    boolean apply(Campaign c, Effect effect) {
        if (effect instanceof Effect.Elected e) {
            c.callbacks.execute(new ListenerCall(c.listener, e.grant(), true, null));
        } else if (effect instanceof Effect.Revoked r) {
            if (end(c, r.grant(), r.reason())) {
                c.callbacks.execute(new ListenerCall(c.listener, r.grant(), false, null));
            }
        } else if (effect instanceof Effect.HandOver h) {
            log.info(
                    "pglease: {} hands lease {} token {} over: its listener finishes, then it is released",
                    holder,
                    Names.quote(c.name),
                    h.grant().token());
            c.callbacks.execute(
                    new ListenerCall(c.listener, h.grant(), false, () -> handOverDone.accept(c, h.grant())));
        } else if (effect instanceof Effect.Ended e) {
            end(c, e.grant(), e.reason());
        } else if (effect instanceof Effect.Extended e) {
            e.grant().extend(e.deadline(), e.wallDeadlineMillis());
            if (observing) {
                observer.renewed(
                        c.name,
                        e.grant().token(),
                        Duration.ofNanos(ticker.read() - e.sentAt()),
                        Instant.ofEpochMilli(e.sentAtMillis()));
            }
        } else {
            return false;
        }
        return true;
    }

    /** Ends {@code grant} locally; returns false if it had ended already. */
    private boolean end(Campaign c, Grant grant, String reason) {
        if (!grant.revoke(reason)) {
            return false;
        }
        log.info(
                "pglease: {} stepped down from lease {} token {}: {}",
                holder,
                Names.quote(c.name),
                grant.token(),
                reason);
        observer.steppedDown(c.name, grant.token(), reason);
        return true;
    }

    /**
     * A call of the listener on the campaign's serial executor, then {@code after} (even if the listener threw). A
     * class rather than a lambda, like the other steps between a statement's answer and the listener: the first
     * election of a process links no call site on the way.
     */
    private record ListenerCall(LeaderListener listener, Leadership leadership, boolean elected, Runnable after)
            implements Runnable {
        @Override
        public void run() {
            try {
                if (elected) {
                    listener.onElected(leadership);
                } else {
                    listener.onRevoked(leadership);
                }
            } finally {
                if (after != null) {
                    after.run();
                }
            }
        }
    }
}
