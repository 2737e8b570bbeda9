package dev.pglease.internal.group;

import dev.pglease.LeaseObserver;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The configured {@link LeaseObserver}'s group calls, as the members make them: whatever the observer throws is
 * logged and ignored. {@link #measuresUnowned()} says whether anything listens, so that the history read behind
 * {@code shardUnowned} is made only then.
 */
final class GroupEvents {

    private static final Logger log = LoggerFactory.getLogger(GroupEvents.class);

    private final LeaseObserver observer;

    GroupEvents(LeaseObserver observer) {
        this.observer = observer;
    }

    /** Whether an observer is configured (the no-op one is not). */
    boolean measuresUnowned() {
        return observer != LeaseObserver.NONE;
    }

    void joined(String group, int shards) {
        try {
            observer.groupJoined(group, shards);
        } catch (RuntimeException | Error e) {
            threw(e);
        }
    }

    void left(String group) {
        try {
            observer.groupLeft(group);
        } catch (RuntimeException | Error e) {
            threw(e);
        }
    }

    void assigned(String group, int shard, long token) {
        try {
            observer.shardAssigned(group, shard, token);
        } catch (RuntimeException | Error e) {
            threw(e);
        }
    }

    void revoked(String group, int shard, long token, boolean handedOver) {
        try {
            observer.shardRevoked(group, shard, token, handedOver);
        } catch (RuntimeException | Error e) {
            threw(e);
        }
    }

    void unowned(String group, int shard, long token, Duration unowned) {
        try {
            observer.shardUnowned(group, shard, token, unowned);
        } catch (RuntimeException | Error e) {
            threw(e);
        }
    }

    private static void threw(Throwable e) {
        log.warn("pglease: a LeaseObserver threw; ignored", e);
    }
}
