package dev.pglease.spring;

import dev.pglease.GroupConfig;
import dev.pglease.GroupListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseGroup;
import dev.pglease.PgLease;
import java.time.Duration;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.context.ApplicationEventPublisher;
import org.springframework.context.ApplicationEventPublisherAware;
import org.springframework.context.SmartLifecycle;

/**
 * This application's membership of a lease group as a Spring bean: it joins the group when the application context
 * has started (so callbacks never reach half-initialised beans) and, when the context stops or closes, drains the
 * shard work in flight and leaves the group, handing every shard over cooperatively, before the {@code DataSource}
 * goes away. The auto-configuration defines one from {@code pglease.group.*}; define more beans of this class for
 * more groups.
 *
 * <p>{@link GroupListener} beans in the context hear of every shard this member gains and loses, and every change is
 * also published as a {@link ShardAssignedEvent} or {@link ShardRevokedEvent}. {@link ShardOwner} methods run only
 * for the shards this member owns, with the shard's grant in {@link dev.pglease.FencingContext#current()}.
 *
 * <p>A cooperative move waits for the shard's work in flight: when the assignment gives a shard to another member,
 * this member refuses new {@link ShardOwner} work on it at once, tells the listeners and publishes the event, and
 * then waits until the {@link ShardOwner} calls running on that shard have returned (at most the drain timeout,
 * and never past the grant's validity) before the shard is released to the next owner.
 */
public class GroupMembership implements SmartLifecycle, ApplicationEventPublisherAware {

    private static final Logger LOG = LoggerFactory.getLogger(GroupMembership.class);
    private static final ThreadLocal<Integer> CURRENT_SHARD = new ThreadLocal<>();

    private final PgLease pglease;
    private final String group;
    private final int shards;
    private final GroupConfig config;
    private final Supplier<List<GroupListener>> listeners;
    private final Duration drainTimeout;
    private volatile ApplicationEventPublisher publisher;
    private volatile LeaseGroup membership;

    /** Guards the shard state below. */
    private final Object work = new Object();
    /** The grant of each shard this member owns and does not give up yet. Guarded by work. */
    private final Map<Integer, Leadership> owned = new HashMap<>();
    /** Shard work in flight, per shard. Guarded by work. */
    private final Map<Integer, Integer> inFlight = new HashMap<>();

    private boolean draining; // guarded by work

    /**
     * @param listeners    looked up at every callback, so that listener beans may themselves depend on this bean
     * @param drainTimeout how long a cooperative move or the shutdown lets the shard work in flight finish
     * @throws IllegalArgumentException for a bad group name or number of shards (as {@link PgLease#group}), or a
     *                                  negative drain timeout
     */
    public GroupMembership(
            PgLease pglease,
            String group,
            int shards,
            GroupConfig config,
            Supplier<List<GroupListener>> listeners,
            Duration drainTimeout) {
        this.pglease = Objects.requireNonNull(pglease, "pglease must not be null");
        this.group = Objects.requireNonNull(group, "group must not be null (pglease.group.name)");
        if (group.isBlank()) {
            throw new IllegalArgumentException("the group name (pglease.group.name) must not be blank");
        }
        if (shards < 1 || shards > 100_000) {
            throw new IllegalArgumentException(
                    "the number of shards (pglease.group.shards) must be between 1 and 100000, got " + shards);
        }
        this.shards = shards;
        this.config = Objects.requireNonNull(config, "config must not be null");
        this.listeners = Objects.requireNonNull(listeners, "listeners must not be null");
        Objects.requireNonNull(drainTimeout, "drainTimeout must not be null");
        if (drainTimeout.isNegative()) {
            throw new IllegalArgumentException(
                    "drainTimeout (pglease.group.drain-timeout) must be zero or positive, got " + drainTimeout);
        }
        this.drainTimeout = drainTimeout;
    }

    @Override
    public void setApplicationEventPublisher(ApplicationEventPublisher applicationEventPublisher) {
        this.publisher = applicationEventPublisher;
    }

    /** The group's name. */
    public String group() {
        return group;
    }

    /** The group's number of shards. */
    public int shards() {
        return shards;
    }

    /** This member's weight and priority. */
    public GroupConfig config() {
        return config;
    }

    /** How long a cooperative move or the shutdown lets the shard work in flight finish. */
    public Duration drainTimeout() {
        return drainTimeout;
    }

    /** The running membership, while started. */
    public Optional<LeaseGroup> membership() {
        return Optional.ofNullable(membership);
    }

    /** The shards this member owns now (see {@link LeaseGroup#ownedShards()}); empty while stopped. */
    public SortedSet<Integer> ownedShards() {
        LeaseGroup g = membership;
        return g == null ? Collections.emptySortedSet() : g.ownedShards();
    }

    /** The grant of {@code shard} while this member owns it, to fence writes with. */
    public Optional<Leadership> leadership(int shard) {
        checkShard(shard);
        LeaseGroup g = membership;
        return g == null ? Optional.empty() : g.leadership(shard);
    }

    /**
     * The shard the current thread's {@link ShardOwner} call runs for, while it runs (the innermost one); its grant is
     * {@link dev.pglease.FencingContext#current()}.
     */
    public static OptionalInt currentShard() {
        Integer shard = CURRENT_SHARD.get();
        return shard == null ? OptionalInt.empty() : OptionalInt.of(shard);
    }

    private void checkShard(int shard) {
        if (shard < 0 || shard >= shards) {
            throw new IllegalArgumentException(
                    "group " + group + " has shards 0 to " + (shards - 1) + ", got " + shard);
        }
    }

    /**
     * Starts a piece of work on {@code shard}: its grant, counted as in flight until {@link #endWork(int)}; empty (and
     * nothing counted) when this member does not own the shard, is giving it up, or is draining.
     */
    Optional<Leadership> beginWork(int shard) {
        checkShard(shard);
        synchronized (work) {
            if (draining) {
                return Optional.empty();
            }
            Leadership l = owned.get(shard);
            LeaseGroup g = membership;
            if (l == null || !l.isValid() || g == null || g.leadership(shard).orElse(null) != l) {
                return Optional.empty();
            }
            inFlight.merge(shard, 1, Integer::sum);
            return Optional.of(l);
        }
    }

    /** The shards this member owns now and may start work on, in ascending order. */
    SortedSet<Integer> workableShards() {
        synchronized (work) {
            return draining ? Collections.emptySortedSet() : new TreeSet<>(owned.keySet());
        }
    }

    /** Ends a piece of work on {@code shard} begun with a grant from {@link #beginWork(int)}. */
    void endWork(int shard) {
        synchronized (work) {
            inFlight.merge(shard, -1, (a, b) -> a + b == 0 ? null : a + b);
            work.notifyAll();
        }
    }

    /** Runs {@code body} as work on {@code shard}: the shard is {@link #currentShard()} meanwhile. */
    static <T> T runFor(int shard, ShardWork<T> body) throws Throwable {
        Integer outer = CURRENT_SHARD.get();
        CURRENT_SHARD.set(shard);
        try {
            return body.run();
        } finally {
            if (outer == null) {
                CURRENT_SHARD.remove();
            } else {
                CURRENT_SHARD.set(outer);
            }
        }
    }

    /** A piece of shard work. */
    interface ShardWork<T> {
        T run() throws Throwable;
    }

    @Override
    public synchronized void start() {
        if (membership == null) {
            synchronized (work) {
                draining = false;
            }
            membership = pglease.group(group, shards, config, new Dispatch());
        }
    }

    /**
     * Refuses new shard work at once, waits while shard work is in flight (at most the drain timeout), then leaves
     * the group: every shard is handed over cooperatively.
     */
    @Override
    public synchronized void stop() {
        synchronized (work) {
            draining = true;
        }
        awaitIdle(null, System.nanoTime() + drainTimeout.toNanos());
        LeaseGroup g = membership;
        membership = null;
        if (g != null) {
            g.close();
        }
        synchronized (work) {
            owned.clear();
        }
    }

    /** Waits until no work runs on {@code shard} (every shard: {@code null}), or until {@code end}. */
    private void awaitIdle(Integer shard, long end) {
        synchronized (work) {
            try {
                while (shard == null ? !inFlight.isEmpty() : inFlight.containsKey(shard)) {
                    long left = end - System.nanoTime();
                    if (left <= 0) {
                        LOG.warn(
                                "pglease: shard work of group {} still in flight {}; the shard{} handed over anyway",
                                group,
                                shard == null ? "on " + inFlight.keySet() : "on shard " + shard,
                                shard == null ? "s are" : " is");
                        return;
                    }
                    work.wait(Math.max(1, Math.min(20, left / 1_000_000)));
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    @Override
    public boolean isRunning() {
        return membership != null;
    }

    /** {@code DEFAULT_PHASE - 1000}, as {@link LeaderElection}: stops after the scheduler, before the data source. */
    @Override
    public int getPhase() {
        return DEFAULT_PHASE - 1000;
    }

    private final class Dispatch implements GroupListener {
        @Override
        public void onAssigned(int shard, Leadership leadership) {
            synchronized (work) {
                owned.put(shard, leadership);
            }
            for (GroupListener l : listeners.get()) {
                l.onAssigned(shard, leadership);
            }
            ApplicationEventPublisher p = publisher;
            if (p != null) {
                p.publishEvent(new ShardAssignedEvent(GroupMembership.this, shard, leadership));
            }
        }

        @Override
        public void onRevoked(int shard, Leadership leadership) {
            boolean handedOver = leadership.isValid();
            synchronized (work) {
                owned.remove(shard, leadership);
            }
            try {
                for (GroupListener l : listeners.get()) {
                    l.onRevoked(shard, leadership);
                }
                ApplicationEventPublisher p = publisher;
                if (p != null) {
                    p.publishEvent(new ShardRevokedEvent(GroupMembership.this, shard, leadership, handedOver));
                }
            } finally {
                if (handedOver) {
                    long end = System.nanoTime()
                            + Math.min(
                                    drainTimeout.toNanos(),
                                    leadership.remaining().toNanos());
                    awaitIdle(shard, end);
                }
            }
        }
    }

    @Override
    public String toString() {
        return "GroupMembership{group=" + group + ", shards=" + shards + ", owned=" + ownedShards() + "}";
    }
}
