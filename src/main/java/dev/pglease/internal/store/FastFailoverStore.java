package dev.pglease.internal.store;

import dev.pglease.LeaseException;
import dev.pglease.Ticker;
import dev.pglease.internal.sql.FastFailoverStatements;
import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.sql.SessionStatements;
import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Timings;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Crash takeover when the holder's database session ends ({@link dev.pglease.LeaseConfig.Builder#fastFailover}): the
 * lease statements of {@link JdbcLeaseStore}, plus a session-level advisory lock per lease on the lease connection.
 *
 * <ul>
 *   <li>Before acquiring, the candidate takes the lease's advisory lock; after a grant it keeps it and registers the
 *       grant (the server records the registering session).</li>
 *   <li>A candidate that finds the lock held by someone else for longer than other candidates hold it (a few
 *       statements) waits for it on a connection of its own (a blocking shared lock request, no polling); PostgreSQL grants it the moment the holder's session ends, and the
 *       election loop is woken to take the lease over, which the server allows only once the registered holder's
 *       session is gone. The lock only wakes standbys: holding it proves nothing.</li>
 *   <li>The holder revokes a registered leadership the moment the session that registered it ends or is replaced:
 *       it watches its own lease session from another connection (blocked on a lock that session holds), and hears
 *       of every dropped lease connection. A renewal is never sent for a registered grant from another session.</li>
 *   <li>While that watch is down, no grant stays registered: the holder withdraws its registrations on the lease
 *       session (then a grant is taken only at expiry, and a renewal fails before that), or gives a grant up when
 *       that fails too, and registers them again once the watch waits again.</li>
 *   <li>A candidate refused by a holder that does not hold the lease's lock (its grant was made while an earlier
 *       holder's session held the lock, and it registers at a renewal once the lock is free) looks again after
 *       retryPeriod, twice for that grant, so that it waits on the lock once the holder has registered; a plain-mode
 *       holder never registers, so then it waits for the expiry.</li>
 *   <li>A registration is kept with its token: one left from an earlier grant never touches a later one.</li>
 *   <li>The shards of lease groups are registered like elections, but nobody waits on a shard's lock: the members of
 *       a group watch each other ({@link #watchLock}) and campaign for a dead member's shards once the group has
 *       removed it; an acquire of a shard whose holder no longer holds its lock tries the takeover, and again every
 *       few milliseconds for a moment (the server may still list the ended session).</li>
 * </ul>
 */
public final class FastFailoverStore implements LeaseStore {

    private static final Logger log = LoggerFactory.getLogger(FastFailoverStore.class);
    private static final String SESSION_ENDED =
            "its fast-failover lease session ended: a standby may take the lease over at once";
    /** How often a refused candidate looks again soon at one grant whose holder lacks the lock (a plain one never registers). */
    private static final int UNREGISTERED_HOLDER_RECHECKS = 2;

    /** What the election loop hears from fast failover. */
    public interface Events {
        /** The lock of lease {@code name}'s holder was freed: its session ended or it released. Try at once. */
        void holderGone(String name);

        /** This process may no longer use {@code token} of lease {@code name}. */
        void lost(String name, long token, String reason);

        /**
         * The watch of the lease session failed (its connection broke, perhaps together with the lease session):
         * look at the held leases soon, on the lease session, so that a dead session is found out.
         */
        void sessionInDoubt();

        /**
         * The lease connection's statements ran on two server sessions (a transaction pooler): every grant this
         * process holds, or may resume, ends now, registered for crash takeover or not.
         */
        void serverSessionShared(String reason);
    }

    private record Registration(long session, long token, String holder) {}

    private final JdbcLeaseStore store;
    private final LeaseStatements leaseStatements;
    private final FastFailoverStatements sql;
    private final Ticker ticker;
    private final Watches watches;
    /**
     * How soon a standby looks again after a holder refused it without holding the lease's lock (a grant not
     * registered yet): the holder registers at a renewal, and then there is a lock to wait on.
     */
    private final long unregisteredHolderRecheckMillis;
    /** Per lease: the grant whose holder refused this process without holding the lock, and the looks again so far. */
    private final Map<String, long[]> unregisteredHolder = new ConcurrentHashMap<>();
    /** The first half of the key of the lease sessions' own locks: one per schema. */
    private final int sessionKeySpace;

    private final SplittableRandom random = new SplittableRandom();
    /** Leases whose advisory lock this process holds, with the lease session that holds it. Guarded by store. */
    private final Map<String, Long> locked = new HashMap<>();
    /** Grants registered for crash takeover, with the lease session that registered them. */
    private final Map<String, Registration> registered = new ConcurrentHashMap<>();
    /** The lease session whose server session was read first, and that server session (pid@start). Guarded by store. */
    private long identifiedSession;

    private String serverSession;
    /**
     * Set when a lease statement ran on another server session than its lease session's first one (a transaction
     * pooler the start-up check could not see): crash takeover is off from then on, and the lease statements carry
     * their settings in their own transactions.
     */
    private volatile boolean sharedServerSessions;
    /** Grants held without a registration, already warned about, with their token. Guarded by store. */
    private final Map<String, Long> unregistered = new HashMap<>();
    /** The lease session whose end this process watches (0: none). Written under store. */
    private volatile long watchedSession;
    /**
     * Whether the watch of {@link #watchedSession} failed and is not waiting again: then this process would not learn
     * at once that the session ended, so no grant stays registered for crash takeover ({@link #withdrawn}).
     */
    private volatile boolean watchDown;
    /** Grants held whose registration is withdrawn while the watch of their lease session is down. */
    private final Map<String, Registration> withdrawn = new ConcurrentHashMap<>();
    /** When a standby was woken by the end of a holder's session, per lease (ticker). */
    private final Map<String, Long> wokenAt = new ConcurrentHashMap<>();

    private volatile Events events = new Events() {
        @Override
        public void holderGone(String name) {}

        @Override
        public void lost(String name, long token, String reason) {}

        @Override
        public void sessionInDoubt() {}

        @Override
        public void serverSessionShared(String reason) {}
    };

    public FastFailoverStore(
            JdbcLeaseStore store,
            LeaseStatements leases,
            FastFailoverStatements sql,
            DataSource dataSource,
            String schema,
            Ticker ticker,
            Duration retryPeriod) {
        this.store = store;
        this.leaseStatements = leases;
        this.sql = sql;
        this.ticker = ticker;
        this.watches = new Watches(dataSource);
        this.unregisteredHolderRecheckMillis = Timings.millisRoundedUp(retryPeriod);
        this.sessionKeySpace = Names.schema(schema).hashCode();
        store.holdsSessionLocks(this::sessionEnded);
    }

    /** Where the election loop hears of freed holder locks and lost grants. */
    public void tell(Events events) {
        this.events = events;
    }

    @Override
    public Acquired acquire(String name, String holder, Duration ttl) throws SQLException {
        LeaseStatements.Kind kind = store.kindOf(name);
        boolean shard = kind == LeaseStatements.Kind.SHARD;
        Long woke = wokenAt.get(name);
        boolean wasWoken = woke != null;
        boolean recentlyWoken =
                wasWoken && ticker.read() - woke < TimeUnit.MILLISECONDS.toNanos(Timings.TAKEOVER_RETRY_WINDOW_MILLIS);
        if (wasWoken && !recentlyWoken) {
            wokenAt.remove(name, woke);
        }
        if (sharedServerSessions) {
            return store.acquire(name, holder, ttl);
        }
        boolean[] watch = new boolean[1];
        boolean[] holderUnregistered = new boolean[1];
        Acquired result = store.onLeaseSession((c, session) -> {
            checkOneServerSession(c, session);
            locked.values().removeIf(s -> s != session);
            if (shard) {
                store.beforeShardAcquire(c, holder);
            }
            boolean haveLock = locked.containsKey(name);
            // A watch that still waits on the lock knows it is held: no need to wait out another candidate's look.
            int lockWait = wasWoken
                    ? Timings.FAST_FAILOVER_LOCK_WAIT_MILLIS
                    : shard || watches.running(leaseKey(name)) ? 0 : Timings.FAST_FAILOVER_LOCK_PEEK_MILLIS;
            if (!haveLock && sql.lock(c, name, lockWait)) {
                locked.put(name, session);
                haveLock = true;
            }
            // Woken because the holder's lock was freed: the takeover is the likely outcome, so it goes first.
            Optional<Long> early =
                    haveLock && wasWoken ? sql.takeOverEndedSession(c, name, holder, ttl) : Optional.empty();
            Acquired a = early.isPresent()
                    ? new Acquired(true, early.get(), holder, 0)
                    : leaseStatements.acquire(c, name, holder, ttl, kind);
            if (!a.granted() && haveLock && a.holder() != null && !holder.equals(a.holder())) {
                early = sql.takeOverEndedSession(c, name, holder, ttl);
                if (early.isPresent()) {
                    a = new Acquired(true, early.get(), holder, 0);
                }
            }
            if (early.isPresent()) {
                log.info(
                        "pglease: took over lease {} with token {}: its holder's database session has ended",
                        Names.quote(name),
                        early.get());
            }
            if (a.granted()) {
                if (!haveLock && sql.lock(c, name, Timings.FAST_FAILOVER_LOCK_WAIT_MILLIS)) {
                    // Granted a free lease while others held the lock briefly (their watches, their attempts):
                    // take it now, so that this grant is registered too.
                    locked.put(name, session);
                    haveLock = true;
                }
                if (haveLock && watchDown && watchedSession == session) {
                    // not registered while this process could not learn at once that its session ended
                    withdrawn.put(name, new Registration(session, a.token(), holder));
                } else if (haveLock && sql.register(c, name, holder, a.token())) {
                    registered.put(name, new Registration(session, a.token(), holder));
                    watchSession(c, session);
                }
            } else if (haveLock && !holder.equals(a.holder())) {
                sql.unlock(c, name);
                locked.remove(name);
                holderUnregistered[0] = !shard && a.holder() != null;
                if (shard && a.holder() != null && !wasWoken) {
                    // its holder's session gave the lock back: ended (or about to be listed as ended)
                    wokenAt.put(name, ticker.read());
                    watch[0] = true;
                }
            } else if (!haveLock && a.holder() != null && !holder.equals(a.holder()) && !shard) {
                watch[0] = true;
            }
            return a;
        });
        if (result.granted()) {
            wokenAt.remove(name);
            unregisteredHolder.remove(name);
            watches.cancel(leaseKey(name));
        } else if (watch[0] && shard) {
            return new Acquired(false, result.token(), result.holder(), Timings.TAKEOVER_RETRY_MILLIS);
        } else if (watch[0]) {
            watchLease(name);
        }
        if (recentlyWoken
                && !holderUnregistered[0]
                && !result.granted()
                && result.holder() != null
                && !holder.equals(result.holder())) {
            // The holder's lock is gone but the server may still list its backend for a moment: look again soon.
            // (Not when this process held the lock itself: then the takeover was refused because the grant is not
            // registered, and looking again soon would change nothing.)
            return new Acquired(false, result.token(), result.holder(), Timings.TAKEOVER_RETRY_MILLIS);
        }
        if (holderUnregistered[0]
                && result.waitMillis() > unregisteredHolderRecheckMillis
                && recheckUnregistered(name, result.token())) {
            // Nothing to wait on until the holder registers (at a renewal): look again then, and wait on its lock.
            return new Acquired(false, result.token(), result.holder(), unregisteredHolderRecheckMillis);
        }
        return result;
    }

    /** Whether to look again soon at grant {@code token} of lease {@code name}, refused by a holder without the lock. */
    private boolean recheckUnregistered(String name, long token) {
        long[] seen = unregisteredHolder.compute(
                name, (k, v) -> v == null || v[0] != token ? new long[] {token, 1} : new long[] {token, v[1] + 1});
        return seen[1] <= UNREGISTERED_HOLDER_RECHECKS;
    }

    @Override
    public Renewal renew(String holder, List<Held> leases) throws SQLException {
        if (sharedServerSessions) {
            return store.renew(holder, leases);
        }
        return store.onLeaseSession((c, session) -> {
            checkOneServerSession(c, session);
            List<Held> current = new ArrayList<>(leases.size());
            for (Held h : leases) {
                Registration r = registered.get(h.name());
                if (r != null && r.token() == h.token() && r.session() != session) {
                    registered.remove(h.name(), r);
                    log.warn(
                            "pglease: the lease connection of {} was replaced; lease {} token {} may already be "
                                    + "taken over, so it is not renewed",
                            holder,
                            Names.quote(h.name()),
                            h.token());
                } else {
                    current.add(h);
                }
            }
            Renewal renewal = store.renewOnSession(c, holder, current);
            for (Held h : current) {
                if (renewal.renewed().contains(h.name())) {
                    registerLate(c, session, holder, h);
                }
            }
            return renewal;
        });
    }

    /**
     * Under the store's lock, before the first statement of an acquire or renewal on lease session {@code session}:
     * reads which server session serves it. Directly or through a session pooler that is the same one for the whole
     * lease session. When it is not (a transaction pooler, e.g. several behind a balancer, that the start-up check
     * could not see), the session advisory locks and settings of fast failover do not stay with this process: every
     * grant it holds ends at once (registered for crash takeover or not), the lease connection is aborted, crash
     * takeover is turned off for this {@code PgLease}, and every later lease statement carries its settings in its own
     * transaction.
     *
     * @throws LeaseException UNSUPPORTED_POOLING, once, when the server session changed
     */
    private void checkOneServerSession(Connection c, long session) throws SQLException {
        String identity = SessionStatements.backendIdentity(c);
        if (identifiedSession != session) {
            identifiedSession = session;
            serverSession = identity;
            return;
        }
        if (identity.equals(serverSession)) {
            return;
        }
        sharedServerSessions = true;
        store.useTransactionScopedSettings();
        LeaseException refused = new LeaseException(
                LeaseException.Reason.UNSUPPORTED_POOLING,
                "the lease connection's statements ran on two server sessions (" + serverSession + ", then "
                        + identity + "): the data source goes through a transaction pooler that the start-up check "
                        + "did not see (several poolers behind a balancer?). LeaseConfig.fastFailover needs one server "
                        + "session for the lease connection, so it is off for this PgLease from now on, and its held "
                        + "leases are given up at once. Connect pglease to PostgreSQL itself or to a session-pooled "
                        + "port, or turn fastFailover off");
        log.error("pglease: {}", refused.getMessage());
        events.serverSessionShared(refused.getMessage()); // whichever statement found it out: renewal or acquire
        throw refused;
    }

    /**
     * Under the store's lock, on lease session {@code session}, right after it renewed {@code held}: registers that
     * grant for crash takeover if it was granted unregistered (the lease's lock was taken by another session then,
     * such as a paused old holder's whose lease expired). Tries the lock without waiting, once per renewal, until the
     * grant is registered; the server accepts the registration only from this session, holding the lock, for the
     * current unexpired grant of this login. Shards are left to their group's own mechanism.
     */
    private void registerLate(Connection c, long session, String holder, Held held) throws SQLException {
        String name = held.name();
        Registration r = registered.get(name);
        Registration w = withdrawn.get(name);
        if ((r != null && r.token() == held.token() && r.session() == session)
                || (w != null && w.token() == held.token() && w.session() == session)
                || store.kindOf(name) == LeaseStatements.Kind.SHARD) {
            return;
        }
        Long lockedIn = locked.get(name);
        boolean haveLock = lockedIn != null && lockedIn == session;
        if (!haveLock && sql.lock(c, name, 0)) {
            locked.put(name, session);
            haveLock = true;
        }
        if (haveLock && watchDown && watchedSession == session) {
            // not registered while this process could not learn at once that its session ended
            withdrawn.put(name, new Registration(session, held.token(), holder));
            unregistered.remove(name);
        } else if (haveLock && sql.register(c, name, holder, held.token())) {
            registered.put(name, new Registration(session, held.token(), holder));
            watchSession(c, session);
            unregistered.remove(name);
            log.info(
                    "pglease: lease {} token {} is registered for crash takeover now: its lease's lock was free",
                    Names.quote(name),
                    held.token());
        } else if (!Long.valueOf(held.token()).equals(unregistered.put(name, held.token()))) {
            log.warn(
                    "pglease: lease {} token {} was granted while another session held its lock (a paused or "
                            + "ending earlier holder): crash takeover is off for it until the lock is free, which "
                            + "every renewal tries",
                    Names.quote(name),
                    held.token());
        }
    }

    @Override
    public boolean release(String name, String holder, long token) throws SQLException {
        if (sharedServerSessions) {
            return store.release(name, holder, token);
        }
        return store.onLeaseSession((c, session) -> {
            boolean released = leaseStatements.release(c, name, holder, token);
            registered.remove(name);
            unregistered.remove(name);
            withdrawn.remove(name);
            Long lockedIn = locked.remove(name);
            if (lockedIn != null && lockedIn == session) {
                sql.unlock(c, name);
            }
            return released;
        });
    }

    @Override
    public List<Fact> read(Collection<String> names) throws SQLException {
        return store.read(names);
    }

    /**
     * Under the store's lock, on lease session {@code session} that just registered a grant: makes sure this process
     * watches that session, through a lock of its own that the session holds, so that every registered grant is
     * revoked the moment the session ends.
     */
    private void watchSession(Connection c, long session) throws SQLException {
        if (watchedSession == session) {
            return;
        }
        for (int attempt = 0; attempt < 8; attempt++) {
            int key = random.nextInt();
            if (sql.lockSession(c, sessionKeySpace, key)) {
                watchedSession = session;
                watchDown = false;
                watches.start(
                        "session " + session,
                        "pglease-fast-failover-session",
                        w -> sql.awaitSessionEnd(w, sessionKeySpace, key),
                        () -> sessionWatched(session),
                        () -> sessionEnded(session),
                        () -> {
                            sessionUnwatched(session);
                            events.sessionInDoubt();
                        });
                return;
            }
        }
        log.warn("pglease: could not take a lock of its own on the lease session; a holder whose lease session ends "
                + "steps down at its next renewal attempt instead of at once");
    }

    /**
     * The watch of lease session {@code session} failed: until it waits again, this process would learn that the
     * session ended only at a renewal, while a standby could take a registered grant over at once. So every grant
     * registered there is withdrawn on that session (then taken only at expiry); a grant that can not be withdrawn
     * (the lease connection fails too, or was replaced) is given up here.
     */
    private void sessionUnwatched(long session) {
        if (watchedSession == session) {
            watchDown = true;
        }
        if (registered.values().stream().noneMatch(r -> r.session() == session)) {
            return;
        }
        try {
            int count = store.onLeaseSession((c, current) -> {
                int n = 0;
                if (current != session) {
                    return n;
                }
                for (Map.Entry<String, Registration> e : List.copyOf(registered.entrySet())) {
                    Registration r = e.getValue();
                    // not found: taken over already; it stays registered here, so that it is given up below
                    if (r.session() == session
                            && sql.unregister(c, e.getKey(), r.token())
                            && registered.remove(e.getKey(), r)) {
                        withdrawn.put(e.getKey(), r);
                        n++;
                    }
                }
                return n;
            });
            if (count > 0) {
                log.warn(
                        "pglease: the watch of its own fast-failover lease session failed; {} grants are taken only "
                                + "at expiry until it is back",
                        count);
            }
        } catch (SQLException | RuntimeException e) {
            log.debug("pglease: withdrawing the fast-failover registrations of session {} failed", session, e);
        }
        sessionEnded(session); // whatever is still registered there: given up
    }

    /**
     * The watch of lease session {@code session} is about to wait again: the grants withdrawn meanwhile are registered
     * again there (a grant the session no longer holds the lock of, or no longer holds, stays unregistered).
     */
    private void sessionWatched(long session) {
        if (withdrawn.isEmpty() && !watchDown) {
            return;
        }
        try {
            store.onLeaseSession((c, current) -> {
                if (current != session || watchedSession != session) {
                    return null;
                }
                watchDown = false;
                for (Map.Entry<String, Registration> e : List.copyOf(withdrawn.entrySet())) {
                    String name = e.getKey();
                    Registration r = e.getValue();
                    Long lockedIn = locked.get(name);
                    if (!withdrawn.remove(name, r)
                            || r.session() != session
                            || lockedIn == null
                            || lockedIn != session) {
                        continue; // its lock went with an earlier session: it stays unregistered
                    }
                    // tracked before the statement: if it fails after the server registered, the grant is still
                    // given up when the session ends
                    registered.put(name, r);
                    if (!sql.register(c, name, r.holder(), r.token())) {
                        registered.remove(name, r);
                    }
                }
                return null;
            });
        } catch (SQLException | RuntimeException e) {
            log.debug("pglease: registering the fast-failover grants of session {} again failed", session, e);
        }
    }

    /** Lease session {@code session} ended or was replaced: every grant it registered is lost. */
    private void sessionEnded(long session) {
        for (Map.Entry<String, Registration> e : List.copyOf(registered.entrySet())) {
            Registration r = e.getValue();
            if (r.session() == session && registered.remove(e.getKey(), r)) {
                events.lost(e.getKey(), r.token(), SESSION_ENDED);
            }
        }
    }

    /** Waits on a connection of its own for the lease's lock to be freed, then wakes the election loop once. */
    private void watchLease(String name) {
        watches.start(
                leaseKey(name),
                "pglease-fast-failover-watch",
                w -> sql.watch(w, name),
                () -> {
                    // Wake the loop first: its own lock request waits the moment it takes to give this one back.
                    wokenAt.put(name, ticker.read());
                    events.holderGone(name);
                },
                () -> {});
    }

    private static String leaseKey(String name) {
        return "lease " + name;
    }

    /**
     * Waits, on a connection and thread of its own, for the advisory lock of {@code lockName} ({@code
     * fast_failover_key}): while a session holds it exclusively, until it is freed, then runs {@code onDone} with true;
     * while nobody holds it, for {@code pollMillis}, then runs {@code onDone} with false. What a member of a lease group
     * does to learn the moment another member's lease session ends. One wait per {@code key}; {@link #cancelWatch}
     * ends it.
     */
    public void watchLock(String key, String lockName, long pollMillis, java.util.function.Consumer<Boolean> onDone) {
        boolean[] held = new boolean[1];
        watches.start(
                "lock " + key,
                "pglease-fast-failover-member",
                w -> {
                    held[0] = sql.lockHeld(w, lockName);
                    if (held[0]) {
                        sql.watch(w, lockName);
                    } else {
                        sql.sleep(w, pollMillis);
                    }
                },
                () -> onDone.accept(held[0]),
                () -> {});
    }

    /** Ends the wait {@link #watchLock} started under {@code key}, if it still runs. */
    public void cancelWatch(String key) {
        watches.cancel("lock " + key);
    }

    @Override
    public void close() {
        watches.close();
        store.close();
    }
}
