package dev.pglease.internal.store;

import dev.pglease.internal.sql.FastFailoverStatements;
import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.util.Names;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Crash takeover when the holder's database session ends ({@link dev.pglease.LeaseConfig.Builder#fastFailover}): the lease
 * statements of {@link JdbcLeaseStore}, plus a session-level advisory lock per lease on the lease connection.
 *
 * <ul>
 *   <li>Before acquiring, the candidate takes the lease's advisory lock; after a grant it keeps it and registers the
 *       grant, which the server accepts only from the session holding the lock.</li>
 *   <li>A candidate that finds the lock held by someone else watches it on a connection of its own (a blocking
 *       shared lock request, no polling); PostgreSQL grants it the moment the holder's session ends, and the
 *       election loop is woken to acquire.</li>
 *   <li>A lease that has not expired is taken over only when the server says its registered holder's session no
 *       longer holds the lock (the candidate holds it now), with the usual {@code token + 1}.</li>
 *   <li>A renewal is never sent for a registered grant from a session other than the one that registered it: the
 *       leadership ends instead (its lock went with the old session, so a standby may already have taken over).</li>
 * </ul>
 */
public final class FastFailoverStore implements LeaseStore {

    private static final Logger log = LoggerFactory.getLogger(FastFailoverStore.class);

    /** How long a woken candidate waits for the lock while other woken candidates hold it briefly. */
    static final int WOKEN_LOCK_WAIT_MILLIS = 200;

    private final JdbcLeaseStore store;
    private final LeaseStatements leaseStatements;
    private final FastFailoverStatements sql;
    private final DataSource dataSource;
    /** Leases whose advisory lock this process holds, with the lease session that holds it. Guarded by store. */
    private final Map<String, Long> locked = new HashMap<>();
    /** Grants registered for crash takeover, with the lease session that registered them. Guarded by store. */
    private final Map<String, Long> registered = new HashMap<>();

    private final Set<String> woken = ConcurrentHashMap.newKeySet();
    private final Map<String, Connection> watching = new ConcurrentHashMap<>();
    private volatile Consumer<String> onLockFreed = name -> {};
    private volatile boolean closed;

    public FastFailoverStore(
            JdbcLeaseStore store, LeaseStatements leases, FastFailoverStatements sql, DataSource dataSource) {
        this.store = store;
        this.leaseStatements = leases;
        this.sql = sql;
        this.dataSource = dataSource;
    }

    /** Called with a lease name when the lock a standby watched was freed. */
    public void onLockFreed(Consumer<String> callback) {
        this.onLockFreed = callback;
    }

    @Override
    public Acquired acquire(String name, String holder, Duration ttl) throws SQLException {
        boolean wasWoken = woken.remove(name);
        boolean[] watch = new boolean[1];
        Acquired result = store.onLeaseSession((c, session) -> {
            locked.values().removeIf(s -> s != session);
            boolean haveLock = locked.containsKey(name);
            if (!haveLock && sql.lock(c, name, wasWoken ? WOKEN_LOCK_WAIT_MILLIS : 0)) {
                locked.put(name, session);
                haveLock = true;
            }
            // Woken because the holder's lock was freed: the takeover is the likely outcome, so it goes first.
            Optional<Long> early =
                    haveLock && wasWoken ? sql.takeOverEndedSession(c, name, holder, ttl) : Optional.empty();
            Acquired a = early.isPresent()
                    ? new Acquired(true, early.get(), holder, 0)
                    : leaseStatements.acquire(c, name, holder, ttl);
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
                if (!haveLock && sql.lock(c, name, WOKEN_LOCK_WAIT_MILLIS)) {
                    // Granted a free lease while others held the lock briefly (their watches, their attempts):
                    // take it now, so that this grant is registered too.
                    locked.put(name, session);
                    haveLock = true;
                }
                if (haveLock && sql.register(c, name, holder, a.token())) {
                    registered.put(name, session);
                }
            } else if (haveLock && !holder.equals(a.holder())) {
                sql.unlock(c, name);
                locked.remove(name);
            } else if (!haveLock && a.holder() != null && !holder.equals(a.holder())) {
                watch[0] = true;
            }
            return a;
        });
        if (watch[0]) {
            watch(name);
        }
        return result;
    }

    @Override
    public Renewal renew(String holder, List<Held> leases) throws SQLException {
        return store.onLeaseSession((c, session) -> {
            List<Held> current = new ArrayList<>(leases.size());
            for (Held h : leases) {
                Long registeredIn = registered.get(h.name());
                if (registeredIn != null && registeredIn != session) {
                    registered.remove(h.name());
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
            return current.isEmpty() ? new Renewal(List.of()) : leaseStatements.renew(c, holder, current);
        });
    }

    @Override
    public boolean release(String name, String holder, long token) throws SQLException {
        return store.onLeaseSession((c, session) -> {
            boolean released = leaseStatements.release(c, name, holder, token);
            registered.remove(name);
            Long lockedIn = locked.remove(name);
            if (lockedIn != null && lockedIn == session) {
                sql.unlock(c, name);
            }
            return released;
        });
    }

    /** Waits on a connection of its own for the lease's lock to be freed, then wakes the election loop once. */
    private void watch(String name) {
        if (closed || watching.containsKey(name)) {
            return;
        }
        Connection c;
        try {
            c = dataSource.getConnection();
            if (!c.getAutoCommit()) {
                c.setAutoCommit(true);
            }
        } catch (SQLException e) {
            log.debug("pglease: could not open a connection to watch lease {}", Names.quote(name), e);
            return;
        }
        if (watching.putIfAbsent(name, c) != null) {
            closeQuietly(c);
            return;
        }
        Thread t = new Thread(
                () -> {
                    try {
                        sql.watch(c, name);
                        if (!closed) {
                            // Wake the loop first: its own lock request waits the moment it takes to give this one
                            // back.
                            woken.add(name);
                            onLockFreed.accept(name);
                        }
                        sql.unwatch(c, name);
                    } catch (SQLException | RuntimeException e) {
                        if (!closed) {
                            log.debug("pglease: watching lease {} failed", Names.quote(name), e);
                        }
                    } finally {
                        watching.remove(name, c);
                        closeQuietly(c);
                    }
                },
                "pglease-fast-failover-watch");
        t.setDaemon(true);
        t.start();
    }

    private static void closeQuietly(Connection c) {
        try {
            c.close();
        } catch (SQLException | RuntimeException e) {
            log.debug("pglease: closing a watch connection failed", e);
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Connection c : watching.values()) {
            try {
                c.abort(Runnable::run);
            } catch (SQLException | RuntimeException e) {
                log.debug("pglease: aborting a watch connection failed", e);
            }
        }
        store.close();
    }
}
