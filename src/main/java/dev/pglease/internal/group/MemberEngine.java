package dev.pglease.internal.group;

import dev.pglease.GroupListener;
import dev.pglease.Leadership;
import dev.pglease.Ticker;
import dev.pglease.internal.sql.GroupStatements;
import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Secrets;
import dev.pglease.internal.util.Timings;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One member of one lease group, in this process: it joins, keeps its member row alive, reads the group when it may
 * have changed, computes the assignment ({@link Assignment}) and makes its campaigns follow it: it starts a campaign
 * for each shard the assignment gives it, and hands over, cooperatively, each shard it holds that the assignment
 * gives to another member. It never takes a shard by force: a shard another member holds is taken only once that
 * member releases it (woken by the release notification) or its lease expires.
 *
 * <p>It reads the group ({@code group_state}, one statement) when a notification names the group (a member joined or
 * left), when another member's row would expire (a member that stopped renewing has left), at least every lease
 * duration (every retry period while notifications are down).
 * Its member row is renewed by the engine's renewal of the process's leases; when that has not happened for
 * 1.25 retry periods (it holds no shard), the member renews the row alone. Reads are at most one per notice
 * interval ({@link Timings#noticeInterval()}), like the engine's re-reads of lease rows.
 */
public final class MemberEngine implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(MemberEngine.class);
    /** Margin after another member's expiry before looking: its row must be gone by the database clock. */
    private static final long EXPIRY_MARGIN_NANOS = 2_000_000L;

    /** Who the member is: the group, its number of shards, the member's weight, priority and holder id. */
    public record Settings(String group, int shards, int weight, int priority, String holder) {}

    private final Settings s;
    private final long leaseDurationNanos;
    private final long renewDeadlineNanos;
    private final long retryPeriodNanos;
    private final long ttlMillis;
    private final int networkTimeoutMillis;
    private final DataSource dataSource;
    private final GroupStatements sql;
    private final ShardCampaigns campaigns;
    private final Memberships memberships;
    private final Runnable renewAlone;
    private final GroupListener listener;
    private final GroupEvents events;
    /** Fast failover: waits for another member's lock; null otherwise. */
    private final MemberWatch memberWatch;

    private final Ticker ticker;
    private final long minReadNanos;
    /** The expiry (ticker) of each shard's grant as the last read showed it: what a crashed holder's grant ends at. */
    private final Map<Integer, Long> knownExpiry = new java.util.concurrent.ConcurrentHashMap<>();
    /** Grants of this member whose time without an owner before them is still to be read. Guarded by lock. */
    private final List<Granted> toMeasure = new ArrayList<>();

    /** A grant of a shard to this member, when this member heard of it (ticker). */
    private record Granted(int shard, long token, long at) {}

    /**
     * Guards the state below. Never held while calling the engine: engine threads take it (briefly) to wake the
     * member, so holding it while waiting for the engine could deadlock.
     */
    private final Object lock = new Object();
    /** Held while deciding and starting campaigns and hand-overs: by the member's thread and by close(). */
    private final Object actions = new Object();
    /** Runs what follows a hand-over (off the engine's threads). */
    private final Executor completions;
    /** The shards with a campaign. Guarded by lock. */
    private final Map<Integer, Slot> slots = new HashMap<>();

    private boolean wake;
    private boolean lookAgain = true;
    /** Fast failover: the member whose lock this member waits for (the next in member order), or null. */
    private String watched;
    /** Fast failover: the key of the wait for {@link #watched}'s lock (a new one per wait), or null. */
    private String watchedKey;

    private long watches;
    /**
     * Fast failover: members whose lock was freed without {@code group_member_gone} removing them yet, with until when
     * to ask again at every read (ticker; a lease duration: by then their grants have expired anyway).
     */
    private final Map<String, Long> suspects = new HashMap<>();

    /** Members that lost their claim to shards, as this member sees it. The member's thread only. */
    private final Claims claims;

    private long nextRead;
    private long lastRead;
    private boolean readOnce;
    private volatile boolean closing;
    private volatile boolean joined;
    private volatile long memberRenewedAt;
    private int failures;
    private Thread thread;

    private static final class Slot {
        final ShardSlot listener;
        final ShardCampaigns.Campaign campaign;
        /** Set (under lock) the moment the hand-over is decided, before the engine is asked for it. */
        boolean givingUp;

        CompletableFuture<Void> handingOver;

        Slot(ShardSlot listener, ShardCampaigns.Campaign campaign) {
            this.listener = listener;
            this.campaign = campaign;
        }
    }

    /**
     * @param renewAlone  renews the process's member rows (and nothing else) on the lease connection, so the
     *                    engine's renewal results reach {@link #memberRenewed}
     * @param completions runs what follows each hand-over
     */
    public MemberEngine(
            Settings settings,
            Timings timings,
            DataSource dataSource,
            GroupStatements sql,
            ShardCampaigns campaigns,
            Memberships memberships,
            Runnable renewAlone,
            GroupListener listener,
            GroupEvents events,
            MemberWatch memberWatch,
            Ticker ticker,
            Executor completions) {
        this.s = settings;
        this.leaseDurationNanos = timings.leaseDuration().toNanos();
        this.claims = new Claims(settings.holder(), leaseDurationNanos);
        this.renewDeadlineNanos = timings.renewDeadline().toNanos();
        this.retryPeriodNanos = timings.retryPeriod().toNanos();
        this.ttlMillis = timings.leaseMillis();
        this.networkTimeoutMillis =
                (int) Math.min(Integer.MAX_VALUE, timings.networkTimeout().toMillis());
        this.completions = completions;
        this.dataSource = dataSource;
        this.sql = sql;
        this.campaigns = campaigns;
        this.memberships = memberships;
        this.renewAlone = renewAlone;
        this.listener = listener;
        this.events = events;
        this.memberWatch = memberWatch;
        this.ticker = ticker;
        this.minReadNanos = timings.noticeInterval().toNanos();
    }

    public String group() {
        return s.group();
    }

    public int shards() {
        return s.shards();
    }

    /**
     * Joins the group now (so that a refusal, e.g. another number of shards than the live members have, reaches the
     * caller), then starts the member's thread.
     *
     * @throws SQLException         from the join
     * @throws IllegalStateException when this process is already a member of the group
     */
    public void start() throws SQLException {
        if (!memberships.add(this)) {
            throw new IllegalStateException(
                    "this PgLease is already a member of group " + Names.quote(s.group()) + "; close that one first");
        }
        try {
            join();
        } catch (SQLException | RuntimeException e) {
            memberships.remove(this);
            throw e;
        }
        Thread t = new Thread(this::run, "pglease-group " + s.group());
        t.setDaemon(true);
        thread = t;
        t.start();
    }

    // ---------------------------------------------------------------- what other threads tell the member

    boolean joined() {
        return joined && !closing;
    }

    /** Whether {@code suffix} (after {@code group/}) names one of this group's shards. */
    boolean isShardLease(String suffix) {
        if (suffix.length() > 6 || (suffix.length() > 1 && suffix.charAt(0) == '0')) {
            return false;
        }
        for (int i = 0; i < suffix.length(); i++) {
            if (suffix.charAt(i) < '0' || suffix.charAt(i) > '9') {
                return false;
            }
        }
        return Integer.parseInt(suffix) < s.shards();
    }

    /** A renewal sent at {@code sent} renewed this member's row, or found it expired or gone. */
    void memberRenewed(long sent, boolean renewed) {
        if (renewed) {
            if (sent - memberRenewedAt > 0) {
                memberRenewedAt = sent;
            }
        } else if (!closing) {
            log.info(
                    "pglease: the member row of {} in group {} expired; joining again",
                    s.holder(),
                    Names.quote(s.group()));
            joined = false;
            wake();
        }
    }

    /** Something may have changed in the group (a notification named it): read it again soon. */
    void lookAgain() {
        synchronized (lock) {
            lookAgain = true;
            wake = true;
            lock.notifyAll();
        }
    }

    private void wake() {
        synchronized (lock) {
            wake = true;
            lock.notifyAll();
        }
    }

    /** The shards this member owns now: granted, told to the listener, and not being handed over. */
    public SortedSet<Integer> ownedShards() {
        SortedSet<Integer> out = new TreeSet<>();
        synchronized (lock) {
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
    public Leadership leadership(int shard) {
        synchronized (lock) {
            Slot slot = slots.get(shard);
            if (slot == null || slot.givingUp) {
                return null;
            }
            Leadership l = slot.listener.assigned();
            return l != null && l.isValid() ? l : null;
        }
    }

    // ---------------------------------------------------------------- the thread

    private void run() {
        while (!closing) {
            long now = ticker.read();
            try {
                if (!joined) {
                    join();
                    now = ticker.read();
                }
                boolean due;
                synchronized (lock) {
                    due = lookAgain || now - nextRead >= 0;
                    if (due && readOnce && now - lastRead < minReadNanos) {
                        nextRead = lastRead + minReadNanos;
                        due = false;
                    }
                }
                if (due) {
                    readAndFollow();
                }
                measureUnowned();
                if (joined && ticker.read() - memberRenewedAt >= retryPeriodNanos + retryPeriodNanos / 4) {
                    renewAlone.run();
                }
                failures = 0;
            } catch (SQLException | RuntimeException e) {
                failures++;
                long backoff = Math.min(retryPeriodNanos * 2, (retryPeriodNanos / 2) << Math.min(failures, 4));
                synchronized (lock) {
                    nextRead = ticker.read() + backoff;
                }
                log.warn(
                        "pglease: member {} of group {}: {}",
                        s.holder(),
                        Names.quote(s.group()),
                        Secrets.redact(String.valueOf(e.getMessage())));
            }
            synchronized (lock) {
                long until = nextRead;
                long renewDue = memberRenewedAt + retryPeriodNanos + retryPeriodNanos / 4;
                if (renewDue - until < 0) {
                    until = renewDue;
                }
                long wait = until - ticker.read();
                if (!wake && !closing && !lookAgain && toMeasure.isEmpty() && wait > 0) {
                    try {
                        TimeUnit.NANOSECONDS.timedWait(lock, wait);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return;
                    }
                }
                wake = false;
            }
        }
    }

    private void join() throws SQLException {
        long sent = ticker.read();
        GroupStatements.Joined j;
        try (Connection c = connection()) {
            j = sql.join(c, s.group(), s.holder(), s.shards(), s.weight(), s.priority(), ttlMillis);
        }
        memberRenewedAt = sent;
        joined = true;
        events.joined(s.group(), j.shards());
        lookAgain();
        log.debug(
                "pglease: {} joined group {} ({} shards) at {}",
                s.holder(),
                Names.quote(s.group()),
                j.shards(),
                j.joinedAt());
    }

    /** Reads the group, computes the assignment and makes the campaigns follow it. */
    private void readAndFollow() throws SQLException {
        long start = ticker.read();
        synchronized (lock) {
            lookAgain = false;
            lastRead = start;
            readOnce = true;
        }
        GroupStatements.State snapshot;
        try (Connection c = connection()) {
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
                            knownExpiry.put(shard, start + TimeUnit.MILLISECONDS.toNanos(owner.remainingMillis())));
            for (GroupStatements.HandedOff h : snapshot.handedOff().values()) {
                // when an operator's handoff stops steering, the shard may be anyone's again
                long ends = start + TimeUnit.MILLISECONDS.toNanos(h.remainingMillis()) + EXPIRY_MARGIN_NANOS;
                if (ends - next < 0) {
                    next = ends;
                }
            }
        }
        synchronized (lock) {
            nextRead = next;
        }
        if (snapshot == null || !present) {
            joined = false; // our row expired or was removed: join again, then look again
            return;
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
        List<Assignment.Pin> pins = new ArrayList<>();
        snapshot.handedOff().forEach((shard, h) -> pins.add(new Assignment.Pin(shard, h.from(), h.toPrefix())));
        if (memberWatch != null) {
            watchNext(members, start);
        }
        Assignment full = Assignment.compute(s.shards(), members, holders, pins);
        List<Assignment.Member> claiming = claims.keep(members, full, holders, pins, start);
        synchronized (lock) {
            long decide = claims.nextDecision(nextRead - EXPIRY_MARGIN_NANOS) + EXPIRY_MARGIN_NANOS;
            if (decide - nextRead < 0) {
                nextRead = decide;
            }
        }
        follow(claiming.size() == members.size() ? full : Assignment.compute(s.shards(), claiming, holders, pins));
    }

    /**
     * Fast failover: waits for the advisory lock of the next member in member order (wrapping around), held by that
     * member's lease session; every member watches one, so every member is watched by one. When the lock is freed,
     * {@code group_member_gone} removes the member if its registered lease session has ended, which tells every member
     * to read the group and campaign for its shards: they are taken over at once ({@code fast_failover_take_over}).
     */
    private void watchNext(List<Assignment.Member> live, long now) {
        List<Assignment.Member> ordered = new ArrayList<>(live);
        ordered.sort(Assignment.ORDER);
        String next = null;
        for (int i = 0; i < ordered.size(); i++) {
            if (ordered.get(i).id().equals(s.holder()) && ordered.size() > 1) {
                next = ordered.get((i + 1) % ordered.size()).id();
            }
        }
        String stop = null;
        String start = null;
        String startMember = null;
        List<String> toAsk;
        synchronized (lock) {
            if (closing) {
                return;
            }
            suspects.entrySet()
                    .removeIf(e -> now - e.getValue() >= 0 || live.stream().noneMatch(x -> x.id().equals(e.getKey())));
            toAsk = List.copyOf(suspects.keySet());
            if (!java.util.Objects.equals(next, watched)) {
                stop = watchedKey;
                watched = next;
                watchedKey = next == null ? null : s.group() + "/" + next + "#" + ++watches;
                start = watchedKey;
                startMember = next;
            }
        }
        if (stop != null) {
            memberWatch.cancel(stop);
        }
        if (start != null) {
            String member = startMember;
            String key = start;
            memberWatch.watch(
                    key, GroupStatements.memberLockName(s.group(), member), held -> memberLockFreed(member, key, held));
        }
        if (!toAsk.isEmpty()) {
            askSuspects(toAsk);
        }
    }

    /** Asks again whether the members whose lock was freed are gone; reads again in a retry period while any is left. */
    private void askSuspects(List<String> toAsk) {
        boolean removed = false;
        try (Connection c = connection()) {
            for (String member : toAsk) {
                if (sql.memberGone(c, s.group(), member)) {
                    removed = true;
                    logGone(member);
                    synchronized (lock) {
                        suspects.remove(member);
                    }
                }
            }
        } catch (SQLException | RuntimeException e) {
            log.warn(
                    "pglease: {} could not check whether members of group {} are gone: {}",
                    s.holder(),
                    Names.quote(s.group()),
                    Secrets.redact(String.valueOf(e.getMessage())));
        }
        synchronized (lock) {
            long again = ticker.read() + retryPeriodNanos;
            if (!suspects.isEmpty() && again - nextRead < 0) {
                nextRead = again;
            }
        }
        if (removed) {
            lookAgain();
        }
    }

    private void logGone(String member) {
        log.info(
                "pglease: member {} of group {} is gone (its lease session ended); its shards are taken over",
                member,
                Names.quote(s.group()));
    }

    /**
     * On the watch's thread: the lock of {@code member} was freed ({@code held}), or nobody held it for a retry period
     * (a plain member, one that has not taken it yet, or one that ended before it did).
     */
    private void memberLockFreed(String member, String key, boolean held) {
        synchronized (lock) {
            if (!key.equals(watchedKey) || closing) {
                return;
            }
            if (held) {
                watched = null;
                watchedKey = null;
            }
        }
        boolean gone = false;
        try (Connection c = connection()) {
            // the server may list the ended session a moment longer than it holds the lock: ask again for a moment
            long until = ticker.read() + TimeUnit.MILLISECONDS.toNanos(Timings.TAKEOVER_RETRY_WINDOW_MILLIS);
            while (!(gone = sql.memberGone(c, s.group(), member)) && held && ticker.read() - until < 0 && !closing) {
                Thread.sleep(Timings.TAKEOVER_RETRY_MILLIS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (SQLException | RuntimeException e) {
            log.warn(
                    "pglease: {} could not check whether member {} of group {} is gone: {}",
                    s.holder(),
                    member,
                    Names.quote(s.group()),
                    Secrets.redact(String.valueOf(e.getMessage())));
        }
        if (gone) {
            logGone(member);
            synchronized (lock) {
                if (key.equals(watchedKey)) {
                    watched = null;
                    watchedKey = null;
                }
            }
            lookAgain();
        } else if (held) {
            synchronized (lock) {
                suspects.put(member, ticker.read() + leaseDurationNanos);
            }
            lookAgain();
        } else {
            watch(member, key);
        }
    }

    /** Waits again for the lock of {@code member}, unless the member watched has changed meanwhile. */
    private void watch(String member, String previousKey) {
        String key;
        synchronized (lock) {
            if (!previousKey.equals(watchedKey) || closing) {
                return;
            }
            key = s.group() + "/" + member + "#" + ++watches;
            watchedKey = key;
        }
        memberWatch.watch(
                key, GroupStatements.memberLockName(s.group(), member), held -> memberLockFreed(member, key, held));
    }

    private static long micros(java.time.Instant t) {
        return t.getEpochSecond() * 1_000_000L + t.getNano() / 1_000;
    }

    private void follow(Assignment target) {
        SortedSet<Integer> mine = target.shardsOf(s.holder());
        synchronized (actions) {
            List<Integer> giving = new ArrayList<>();
            List<Integer> taking = new ArrayList<>();
            synchronized (lock) {
                if (closing) {
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
                synchronized (lock) {
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
            if (events.measuresUnowned()) {
                synchronized (lock) {
                    toMeasure.add(new Granted(shard, leadership.token(), at));
                    wake = true;
                    lock.notifyAll();
                }
            }
        }

        @Override
        public void revoked(int shard, Leadership leadership, boolean handedOver) {
            events.revoked(s.group(), shard, leadership.token(), handedOver);
        }
    };

    /**
     * On the member's thread, in one statement for every grant since the last time: how long each shard this member
     * was granted had no owner before. From the history when the previous grant was given back; from the expiry the
     * last read showed when it expired (a crashed or paused holder: its row and its shards were renewed together, so
     * the read that found it gone came right after the expiry it had shown).
     */
    private void measureUnowned() throws SQLException {
        List<Granted> grants;
        synchronized (lock) {
            if (toMeasure.isEmpty()) {
                return;
            }
            grants = new ArrayList<>(toMeasure);
            toMeasure.clear();
        }
        List<String> names = new ArrayList<>(grants.size());
        List<Long> tokens = new ArrayList<>(grants.size());
        Map<String, Granted> byLease = new HashMap<>();
        for (Granted g : grants) {
            String lease = GroupStatements.shardLease(s.group(), g.shard());
            names.add(lease);
            tokens.add(g.token());
            byLease.put(lease, g);
        }
        List<GroupStatements.Before> found;
        try (Connection c = connection()) {
            found = sql.before(c, names, tokens);
        }
        for (GroupStatements.Before b : found) {
            Granted g = byLease.get(b.lease());
            if (g == null || g.token() != b.token() || b.previousKind() == null) {
                continue;
            }
            long nanos;
            if (b.released()) {
                nanos = (long) (b.millisSincePrevious() * 1_000_000d);
            } else if (s.holder().equals(b.previousHolder())) {
                continue; // this member's own grant expired and it took the shard again
            } else {
                Long expiry = knownExpiry.get(g.shard());
                if (expiry == null) {
                    continue;
                }
                nanos = g.at() - expiry; // below 0 only by the read's rounding: it expired before this grant
            }
            events.unowned(s.group(), g.shard(), g.token(), java.time.Duration.ofNanos(Math.max(0, nanos)));
        }
    }

    /**
     * Holding {@link #actions}, with the slot already marked as given up: asks the engine for the cooperative
     * hand-over of {@code shard}; the slot goes once it has ended.
     */
    private CompletableFuture<Void> handOver(int shard) {
        Slot slot;
        synchronized (lock) {
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
                            synchronized (lock) {
                                slots.remove(shard, slot);
                            }
                            lookAgain(); // the assignment may want it back, or something changed meanwhile
                        },
                        completions);
        synchronized (lock) {
            slot.handingOver = done;
        }
        return done;
    }

    private Connection connection() throws SQLException {
        Connection c = dataSource.getConnection();
        try {
            c.setNetworkTimeout(Runnable::run, networkTimeoutMillis);
            if (!c.getAutoCommit()) {
                c.setAutoCommit(true);
            }
        } catch (SQLException | RuntimeException e) {
            c.close();
            throw e;
        }
        return c;
    }

    // ---------------------------------------------------------------- shutdown

    /**
     * Leaves the group and hands every shard over cooperatively: the member row is deleted first (so the other
     * members compute the assignment without this member at once and campaign for its shards), then each shard's
     * listener is told and returns, then the shard is released and its new owner, woken by the release notification,
     * takes it. Waits at most {@code renewDeadline} for the hand-overs; a shard not released by then expires.
     */
    @Override
    public void close() {
        synchronized (lock) {
            if (closing) {
                return;
            }
            closing = true;
            lock.notifyAll();
        }
        Thread t = thread;
        if (t != null && t != Thread.currentThread()) {
            try {
                t.join(TimeUnit.NANOSECONDS.toMillis(renewDeadlineNanos));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        String stopWatching;
        synchronized (lock) {
            stopWatching = watchedKey;
            watched = null;
            watchedKey = null;
        }
        if (stopWatching != null) {
            memberWatch.cancel(stopWatching);
        }
        try (Connection c = connection()) {
            sql.leave(c, s.group(), s.holder());
        } catch (SQLException | RuntimeException e) {
            log.warn(
                    "pglease: {} could not leave group {} (its member row expires on its own): {}",
                    s.holder(),
                    Names.quote(s.group()),
                    Secrets.redact(String.valueOf(e.getMessage())));
        }
        List<CompletableFuture<Void>> handOvers = new ArrayList<>();
        synchronized (actions) {
            List<Integer> giving = new ArrayList<>();
            synchronized (lock) {
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
        try {
            CompletableFuture.allOf(handOvers.toArray(new CompletableFuture<?>[0]))
                    .get(TimeUnit.NANOSECONDS.toMillis(renewDeadlineNanos), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            log.warn(
                    "pglease: not every shard of group {} was handed over in time; the rest expire",
                    Names.quote(s.group()));
        }
        memberships.remove(this);
        events.left(s.group());
    }

    @Override
    public String toString() {
        return "MemberEngine{group=" + s.group() + ", holder=" + s.holder() + ", owned=" + ownedShards() + "}";
    }
}
