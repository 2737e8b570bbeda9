package dev.pglease.internal.group;

import dev.pglease.GroupListener;
import dev.pglease.Leadership;
import dev.pglease.Ticker;
import dev.pglease.internal.sql.GroupStatements;
import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Secrets;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Makes one member's campaigns follow the assignment: reads the group ({@code group_state}), computes the assignment
 * ({@link Assignment}, without the members that lost their claim, {@link Claims}), starts a campaign for each shard it
 * gives this member, and hands over, cooperatively, each shard it holds that the assignment gives to another member;
 * a shard's slot goes once its hand-over has ended. It sets when the member reads again: at the expiry of another
 * member's row, the end of an operator's handoff, or the next claim to decide, if sooner than the schedule's.
 *
 * <p>Reads and decisions run on the member's thread; {@link #handOverAll} on the closing one; what follows each
 * hand-over on {@code completions}. The slots are guarded by the member's lock; deciding and starting campaigns and
 * hand-overs is guarded by {@link #actions}, which is taken before the member's lock, never after it.
 */
final class AssignmentFollower {

    /** Logs under the member engine's name, as every part of a member does. */
    private static final Logger log = LoggerFactory.getLogger(MemberEngine.class);
    /** Margin after another member's expiry before looking: its row must be gone by the database clock. */
    private static final long EXPIRY_MARGIN_NANOS = 2_000_000L;

    private final MemberEngine.Settings s;
    private final MemberConnections connections;
    private final GroupStatements sql;
    private final ShardCampaigns campaigns;
    private final Memberships memberships;
    private final GroupListener listener;
    private final GroupEvents events;
    private final MemberSchedule schedule;
    private final Ticker ticker;
    private final long leaseDurationNanos;
    private final long retryPeriodNanos;
    /** Fast failover: the ring of waits; null otherwise. */
    private final FailoverRing ring;

    private final UnownedTime unowned;
    /** Members that lost their claim to shards, as this member sees it. The member's thread only. */
    private final Claims claims;
    /** This member's own claim as the others judge it. The member's thread only. */
    private final OwnClaim ownClaim;
    /** Whether the last read found that this member should join afresh (see {@link OwnClaim}). */
    private boolean starved;

    /** Held while deciding and starting campaigns and hand-overs: by the member's thread and by close(). */
    private final Object actions = new Object();
    /** Runs what follows a hand-over (off the engine's threads). */
    private final Executor completions;
    /** The shards with a campaign. Guarded by the member's lock. */
    private final Map<Integer, Slot> slots = new HashMap<>();

    private static final class Slot {
        final ShardSlot listener;
        final ShardCampaigns.Campaign campaign;
        /** Set (under the member's lock) the moment the hand-over is decided, before the engine is asked for it. */
        boolean givingUp;

        CompletableFuture<Void> handingOver;

        Slot(ShardSlot listener, ShardCampaigns.Campaign campaign) {
            this.listener = listener;
            this.campaign = campaign;
        }
    }

    /**
     * @param ring        the ring of waits with fast failover, else null
     * @param completions runs what follows each hand-over
     */
    AssignmentFollower(
            MemberEngine.Settings settings,
            MemberConnections connections,
            GroupStatements sql,
            ShardCampaigns campaigns,
            Memberships memberships,
            GroupListener listener,
            GroupEvents events,
            MemberSchedule schedule,
            Ticker ticker,
            long leaseDurationNanos,
            long retryPeriodNanos,
            FailoverRing ring,
            UnownedTime unowned,
            Executor completions) {
        this.s = settings;
        this.connections = connections;
        this.sql = sql;
        this.campaigns = campaigns;
        this.memberships = memberships;
        this.listener = listener;
        this.events = events;
        this.schedule = schedule;
        this.ticker = ticker;
        this.leaseDurationNanos = leaseDurationNanos;
        this.retryPeriodNanos = retryPeriodNanos;
        this.ownClaim = new OwnClaim(settings.holder(), leaseDurationNanos);
        this.ring = ring;
        this.unowned = unowned;
        this.claims = new Claims(settings.holder(), leaseDurationNanos);
        this.completions = completions;
    }

    /**
     * Reads the group, computes the assignment and makes the campaigns follow it.
     *
     * @return false when the read found this member's row expired or removed (nothing was followed)
     */
    boolean readAndFollow() throws SQLException {
        long start = ticker.read();
        schedule.reading(start);
        GroupStatements.State snapshot;
        try (Connection c = connections.open()) {
            snapshot = sql.state(c, s.group());
        }
        long next = start + (memberships.notificationsHealthy() ? leaseDurationNanos : retryPeriodNanos);
        boolean present = false;
        if (snapshot != null) {
            for (GroupStatements.MemberRow m : snapshot.members()) {
                if (m.id().equals(s.holder())) {
                    present = true;
                } else {
                    long expiry = start
                            + TimeUnit.MILLISECONDS.toNanos(m.remainingMillis())
                            + EXPIRY_MARGIN_NANOS
                            + ThreadLocalRandom.current().nextLong(1_000_000L);
                    if (expiry - next < 0) {
                        next = expiry;
                    }
                }
            }
        }
        if (snapshot != null) {
            snapshot.owners()
                    .forEach((shard, owner) ->
                            unowned.expires(shard, start + TimeUnit.MILLISECONDS.toNanos(owner.remainingMillis())));
            for (GroupStatements.HandedOff h : snapshot.handedOff().values()) {
                // when an operator's handoff stops steering, the shard may be anyone's again
                long ends = start + TimeUnit.MILLISECONDS.toNanos(h.remainingMillis()) + EXPIRY_MARGIN_NANOS;
                if (ends - next < 0) {
                    next = ends;
                }
            }
        }
        schedule.readAt(next);
        if (snapshot == null || !present) {
            return false;
        }
        if (snapshot.shards() != s.shards()) {
            throw new IllegalStateException("group " + Names.quote(s.group()) + " has " + snapshot.shards()
                    + " shards, this member was started with " + s.shards());
        }
        List<Assignment.Member> members = new ArrayList<>(snapshot.members().size());
        for (GroupStatements.MemberRow m : snapshot.members()) {
            members.add(new Assignment.Member(m.id(), m.weight(), m.priority(), m.joinedAt()));
        }
        Map<Integer, Assignment.Holding> holders = new HashMap<>();
        snapshot.owners()
                .forEach((shard, owner) ->
                        holders.put(shard, new Assignment.Holding(owner.holder(), micros(owner.acquiredAt()))));
        Map<Integer, Assignment.Holding> lapsed = new HashMap<>();
        snapshot.lapsed()
                .forEach((shard, owner) ->
                        lapsed.put(shard, new Assignment.Holding(owner.holder(), micros(owner.acquiredAt()))));
        List<Assignment.Pin> pins = new ArrayList<>();
        snapshot.handedOff().forEach((shard, h) -> pins.add(new Assignment.Pin(shard, h.from(), h.toPrefix())));
        if (ring != null) {
            ring.watchNext(members, start);
        }
        Assignment full = Assignment.compute(s.shards(), members, holders, pins, lapsed);
        List<Assignment.Member> claiming = claims.keep(members, full, holders, pins, start);
        if (ownClaim.joinAfresh(full, holders, pins, start)) {
            starved = true;
            log.info(
                    "pglease: member {} of group {} holds no shard while the others keep the shards given to it, and"
                            + " they no longer count it; joining afresh",
                    s.holder(),
                    Names.quote(s.group()));
        }
        synchronized (schedule.lock()) {
            long decide = ownClaim.nextDecision(claims.nextDecision(schedule.nextRead() - EXPIRY_MARGIN_NANOS))
                    + EXPIRY_MARGIN_NANOS;
            schedule.readBy(decide);
        }
        follow(
                claiming.size() == members.size()
                        ? full
                        : Assignment.compute(s.shards(), claiming, holders, pins, lapsed));
        return true;
    }

    /** Whether the last read found that this member should join afresh; clears it. */
    boolean starved() {
        boolean was = starved;
        starved = false;
        return was;
    }

    private static long micros(Instant t) {
        return t.getEpochSecond() * 1_000_000L + t.getNano() / 1_000;
    }

    private void follow(Assignment target) {
        SortedSet<Integer> mine = target.shardsOf(s.holder());
        synchronized (actions) {
            List<Integer> giving = new ArrayList<>();
            List<Integer> taking = new ArrayList<>();
            synchronized (schedule.lock()) {
                if (schedule.closing()) {
                    return;
                }
                for (Map.Entry<Integer, Slot> e : slots.entrySet()) {
                    if (!mine.contains(e.getKey()) && !e.getValue().givingUp) {
                        e.getValue().givingUp = true;
                        giving.add(e.getKey());
                    }
                }
                for (int shard : mine) {
                    if (!slots.containsKey(shard)) {
                        taking.add(shard);
                    }
                }
            }
            for (int shard : giving) {
                handOver(shard);
            }
            for (int shard : taking) {
                ShardSlot slotListener = new ShardSlot(s.group(), shard, listener, slotEvents);
                ShardCampaigns.Campaign campaign =
                        campaigns.start(GroupStatements.shardLease(s.group(), shard), slotListener);
                synchronized (schedule.lock()) {
                    slots.put(shard, new Slot(slotListener, campaign));
                }
            }
        }
    }

    /** What the shards' listeners tell the member, before the group listener hears it. */
    private final ShardSlot.Events slotEvents = new ShardSlot.Events() {
        @Override
        public void assigned(int shard, Leadership leadership) {
            long at = ticker.read();
            events.assigned(s.group(), shard, leadership.token());
            unowned.granted(shard, leadership.token(), at);
        }

        @Override
        public void revoked(int shard, Leadership leadership, boolean handedOver) {
            events.revoked(s.group(), shard, leadership.token(), handedOver);
        }
    };

    /**
     * Holding {@link #actions}, with the slot already marked as given up: asks the engine for the cooperative
     * hand-over of {@code shard}; the slot goes once it has ended.
     */
    private CompletableFuture<Void> handOver(int shard) {
        Slot slot;
        synchronized (schedule.lock()) {
            slot = slots.get(shard);
        }
        CompletableFuture<Void> done = slot.campaign
                .handOver()
                .whenCompleteAsync(
                        (ok, error) -> {
                            if (error != null) {
                                log.warn(
                                        "pglease: hand-over of shard {} of group {} failed: {}",
                                        shard,
                                        Names.quote(s.group()),
                                        Secrets.redact(String.valueOf(error.getMessage())));
                            }
                            synchronized (schedule.lock()) {
                                slots.remove(shard, slot);
                            }
                            schedule.lookAgain(); // the assignment may want it back, or something changed meanwhile
                        },
                        completions);
        synchronized (schedule.lock()) {
            slot.handingOver = done;
        }
        return done;
    }

    /**
     * On close, after the member's thread stopped: hands over every shard not being handed over yet.
     *
     * @return every hand-over still to end, started now or before
     */
    List<CompletableFuture<Void>> handOverAll() {
        List<CompletableFuture<Void>> handOvers = new ArrayList<>();
        synchronized (actions) {
            List<Integer> giving = new ArrayList<>();
            synchronized (schedule.lock()) {
                for (Map.Entry<Integer, Slot> e : slots.entrySet()) {
                    if (e.getValue().givingUp) {
                        if (e.getValue().handingOver != null) {
                            handOvers.add(e.getValue().handingOver);
                        }
                    } else {
                        e.getValue().givingUp = true;
                        giving.add(e.getKey());
                    }
                }
            }
            for (int shard : giving) {
                handOvers.add(handOver(shard));
            }
        }
        return handOvers;
    }

    /** The shards this member owns now: granted, told to the listener, and not being handed over. */
    SortedSet<Integer> ownedShards() {
        SortedSet<Integer> out = new TreeSet<>();
        synchronized (schedule.lock()) {
            for (Map.Entry<Integer, Slot> e : slots.entrySet()) {
                Slot slot = e.getValue();
                Leadership l = slot.listener.assigned();
                if (!slot.givingUp && l != null && l.isValid()) {
                    out.add(e.getKey());
                }
            }
        }
        return out;
    }

    /** The grant of {@code shard}, while this member owns it (see {@link #ownedShards()}); otherwise {@code null}. */
    Leadership leadership(int shard) {
        synchronized (schedule.lock()) {
            Slot slot = slots.get(shard);
            if (slot == null || slot.givingUp) {
                return null;
            }
            Leadership l = slot.listener.assigned();
            return l != null && l.isValid() ? l : null;
        }
    }
}
