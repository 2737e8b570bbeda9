package dev.pglease.internal.group;

import dev.pglease.Ticker;
import dev.pglease.internal.sql.FastFailoverStatements;
import dev.pglease.internal.sql.GroupStatements;
import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.store.LeaseConnectionHooks;
import dev.pglease.internal.store.LeaseStore;
import dev.pglease.internal.store.NotificationListener;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The group memberships of one process (one {@code PgLease}), as the lease connection and the notification
 * listener see them: shard leases are acquired as kind {@code shard}; every renewal of the process's leases also
 * renews the member rows of the groups it has joined, in the same statement ({@code group_renew}); and a
 * notification naming a group makes that group's member look at the group again. With fast failover, the lease
 * session also holds each member's own advisory lock ({@link GroupStatements#memberLockName}), which the member that
 * watches it waits for: it is freed the moment that session ends.
 */
public final class Memberships implements LeaseConnectionHooks, NotificationListener.Receiver {

    private final GroupStatements sql;
    private final Ticker ticker;
    private final long ttlMillis;
    private final Map<String, MemberEngine> members = new ConcurrentHashMap<>();
    /** With fast failover: the statements of the members' advisory locks; else null. */
    private final FastFailoverStatements fastFailover;
    /** Fast failover: the lease connection each member's lock is held on, by group (the lease connection's thread). */
    private final Map<String, Locked> locked = new java.util.HashMap<>();

    private record Locked(String lockName, Connection on) {}

    private volatile boolean notificationsHealthy;

    /**
     * @param ttlMillis    the time to live of member rows: the lease duration, as the leases renewed with them
     * @param fastFailover the fast-failover statements when the process runs in that mode, else null
     */
    public Memberships(
            GroupStatements sql,
            Ticker ticker,
            long ttlMillis,
            boolean notificationsHealthy,
            FastFailoverStatements fastFailover) {
        this.sql = sql;
        this.ticker = ticker;
        this.ttlMillis = ttlMillis;
        this.notificationsHealthy = notificationsHealthy;
        this.fastFailover = fastFailover;
    }

    /** Registers the member of {@code group}; false when this process already has one. */
    boolean add(MemberEngine member) {
        return members.putIfAbsent(member.group(), member) == null;
    }

    /** The member row of {@code member}'s group is no longer renewed. */
    void remove(MemberEngine member) {
        members.remove(member.group(), member);
    }

    boolean notificationsHealthy() {
        return notificationsHealthy;
    }

    @Override
    public LeaseStatements.Kind kindOf(String name) {
        int slash = name.lastIndexOf('/');
        if (slash > 0 && slash < name.length() - 1) {
            MemberEngine m = members.get(name.substring(0, slash));
            if (m != null && m.isShardLease(name.substring(slash + 1))) {
                return LeaseStatements.Kind.SHARD;
            }
        }
        return LeaseStatements.Kind.ELECTION;
    }

    @Override
    public LeaseStore.Renewal renew(Connection c, String holder, List<LeaseStore.Held> leases, LeaseStatements plain)
            throws SQLException {
        List<MemberEngine> joined = new ArrayList<>();
        List<String> groups = new ArrayList<>();
        for (MemberEngine m : members.values()) {
            if (m.joined()) {
                joined.add(m);
                groups.add(m.group());
            }
        }
        if (fastFailover != null) {
            holdMemberLocks(c, holder, joined);
        }
        if (joined.isEmpty()) {
            return plain.renew(c, holder, leases);
        }
        List<LeaseStore.Held> along = new ArrayList<>(leases.size());
        List<LeaseStore.Held> apart = new ArrayList<>();
        for (LeaseStore.Held h : leases) {
            (h.ttlMillis() == ttlMillis ? along : apart).add(h);
        }
        long sent = ticker.read();
        GroupStatements.Renewed renewed = sql.renew(c, holder, groups, along, ttlMillis);
        for (MemberEngine m : joined) {
            m.memberRenewed(sent, renewed.groups().contains(m.group()));
        }
        if (apart.isEmpty()) {
            return new LeaseStore.Renewal(renewed.leases());
        }
        List<String> all = new ArrayList<>(renewed.leases());
        all.addAll(plain.renew(c, holder, apart).renewed());
        return new LeaseStore.Renewal(all);
    }

    @Override
    public void beforeShardAcquire(Connection c, String holder) throws SQLException {
        if (fastFailover == null) {
            return;
        }
        List<MemberEngine> joined = new ArrayList<>();
        for (MemberEngine m : members.values()) {
            if (m.joined()) {
                joined.add(m);
            }
        }
        holdMemberLocks(c, holder, joined);
    }

    /**
     * On the lease connection: takes the advisory lock of each joined member that does not hold it on this
     * connection yet (a new session has none), and gives back those of members that are gone.
     */
    private void holdMemberLocks(Connection c, String holder, List<MemberEngine> joined) throws SQLException {
        synchronized (locked) {
            for (java.util.Iterator<Map.Entry<String, Locked>> it =
                            locked.entrySet().iterator();
                    it.hasNext(); ) {
                Map.Entry<String, Locked> e = it.next();
                if (e.getValue().on() != c) {
                    it.remove(); // taken on a session that was replaced: gone with it
                } else if (!members.containsKey(e.getKey())) {
                    fastFailover.unlock(c, e.getValue().lockName());
                    it.remove();
                }
            }
            for (MemberEngine m : joined) {
                if (!locked.containsKey(m.group())) {
                    String name = GroupStatements.memberLockName(m.group(), holder);
                    if (fastFailover.lock(c, name, 0)) {
                        locked.put(m.group(), new Locked(name, c));
                    }
                }
            }
        }
    }

    @Override
    public void notice(String name) {
        MemberEngine m = members.get(name);
        if (m != null) {
            m.lookAgain();
        }
    }

    @Override
    public void notificationsHealthy(boolean healthy) {
        boolean was = notificationsHealthy;
        notificationsHealthy = healthy;
        if (healthy && !was) {
            members.values().forEach(MemberEngine::lookAgain); // a change may have been missed
        }
    }
}
