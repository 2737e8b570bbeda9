package dev.pglease.internal.group;

import dev.pglease.Ticker;
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
 * notification naming a group makes that group's member look at the group again.
 */
public final class Memberships implements LeaseConnectionHooks, NotificationListener.Receiver {

    private final GroupStatements sql;
    private final Ticker ticker;
    private final long ttlMillis;
    private final Map<String, MemberEngine> members = new ConcurrentHashMap<>();
    private volatile boolean notificationsHealthy;

    /** @param ttlMillis the time to live of member rows: the lease duration, as the leases renewed with them */
    public Memberships(GroupStatements sql, Ticker ticker, long ttlMillis, boolean notificationsHealthy) {
        this.sql = sql;
        this.ticker = ticker;
        this.ttlMillis = ttlMillis;
        this.notificationsHealthy = notificationsHealthy;
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
