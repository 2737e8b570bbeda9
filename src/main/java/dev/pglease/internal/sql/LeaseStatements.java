package dev.pglease.internal.sql;

import dev.pglease.LeaderInfo;
import dev.pglease.internal.store.LeaseStore;
import dev.pglease.internal.store.LeaseStore.Acquired;
import dev.pglease.internal.store.LeaseStore.Held;
import dev.pglease.internal.store.LeaseStore.Renewal;
import dev.pglease.internal.util.Names;
import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;

/**
 * The lease statements of a schema: acquire, renew, release, who leads now, and the warm-up of a new session. Each
 * is one call of the schema's protocol function ({@code R__03_lease_protocol.sql}), which runs one conditional
 * statement reading time only with {@code clock_timestamp()} and checks the caller's login against the lease row.
 * Not granted, not renewed, not released are normal outcomes returned as values; more rows than possible is a bug and
 * throws.
 */
public final class LeaseStatements {

    /** Start of the warm-up's lease names (each followed by a random UUID; never committed). */
    public static final String WARM_UP_NAME_PREFIX = "pglease warm-up ";

    private final String acquire;
    private final String renew;
    private final String release;
    private final String currentLeader;
    private final String read;

    /** What a lease is used for; a lease name is of one kind for good (the schema refuses another, SQLSTATE PL003). */
    public enum Kind {
        /** Electors campaign for it. */
        ELECTION("election"),
        /** Single-shot locks ({@code LeaseLock}). */
        LOCK("lock"),
        /** A shard of a lease group. */
        SHARD("shard");

        private final String sql;

        Kind(String sql) {
            this.sql = sql;
        }

        /** The value of {@code leases.kind}. */
        public String sql() {
            return sql;
        }
    }

    public LeaseStatements(String schema) {
        String s = Names.schema(schema);
        this.acquire = "SELECT granted, token, holder, wait_ms FROM " + s + ".acquire(?, ?, ?, ?)";
        this.renew = "SELECT " + s + ".renew_all(?, ?::text[], ?::bigint[], ?)";
        this.release = "SELECT " + s + ".release(?, ?, ?)";
        this.currentLeader = "SELECT holder, token, remaining_ms, expires_at FROM " + s + ".status(?)";
        this.read = "SELECT name, holder, token, holder IS NOT NULL AND expires_at > clock_timestamp() FROM " + s
                + ".leases WHERE name = ANY (?)";
    }

    /**
     * Takes the lease if it is free or expired (or, for an election, held by this holder and login with a token of an
     * earlier term, after a failover); otherwise says who holds it and how long to wait (database clock). The token
     * is the schema's: the next by the term rule. One statement: {@code <schema>.acquire}.
     */
    public Acquired acquire(Connection c, String name, String holder, Duration ttl) throws SQLException {
        return acquire(c, name, holder, ttl, Kind.ELECTION);
    }

    /** {@link #acquire(Connection, String, String, Duration)} for a lease of the given kind. */
    public Acquired acquire(Connection c, String name, String holder, Duration ttl, Kind kind) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(acquire)) {
            ps.setString(1, name);
            ps.setString(2, holder);
            ps.setLong(3, LeaseStore.ttlMillis(ttl));
            ps.setString(4, kind.sql());
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    throw new IllegalStateException("acquire of lease " + Names.quote(name) + " returned no row");
                }
                Acquired result = new Acquired(rs.getBoolean(1), rs.getLong(2), rs.getString(3), rs.getLong(4));
                if (rs.next()) {
                    throw new IllegalStateException(
                            "acquire of lease " + Names.quote(name) + " returned more than one row");
                }
                return result;
            }
        }
    }

    /**
     * Renews every listed lease in one statement per lease duration ({@code <schema>.renew_all}); a lease is renewed
     * only if this holder and login still have it with the same token, it has not expired and the token is of the
     * current term (a grant made before a failover is not renewed: its holder acquires the lease again). Returns the
     * names that were renewed.
     */
    public Renewal renew(Connection c, String holder, List<Held> leases) throws SQLException {
        List<String> renewed = new ArrayList<>(leases.size());
        Map<Long, List<Held>> byTtl = new LinkedHashMap<>();
        for (Held h : leases) {
            byTtl.computeIfAbsent(h.ttlMillis(), k -> new ArrayList<>()).add(h);
        }
        for (Map.Entry<Long, List<Held>> group : byTtl.entrySet()) {
            renewGroup(c, holder, group.getValue(), group.getKey(), renewed);
        }
        if (renewed.size() > leases.size()) {
            throw new IllegalStateException(
                    "renew returned " + renewed.size() + " rows for " + leases.size() + " leases");
        }
        return new Renewal(renewed);
    }

    private void renewGroup(Connection c, String holder, List<Held> leases, long ttlMillis, List<String> renewed)
            throws SQLException {
        String[] names = new String[leases.size()];
        Long[] tokens = new Long[leases.size()];
        for (int i = 0; i < names.length; i++) {
            names[i] = leases.get(i).name();
            tokens[i] = leases.get(i).token();
        }
        Array nameArray = c.createArrayOf("text", names);
        Array tokenArray = c.createArrayOf("bigint", tokens);
        try (PreparedStatement ps = c.prepareStatement(renew)) {
            ps.setString(1, holder);
            ps.setArray(2, nameArray);
            ps.setArray(3, tokenArray);
            ps.setLong(4, ttlMillis);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    renewed.add(rs.getString(1));
                }
            }
        } finally {
            nameArray.free();
            tokenArray.free();
        }
    }

    /**
     * Runs the grant, release, takeover and renewal statements once, on a lease name of its own, inside a
     * transaction that is then rolled back: a new session's first real grant then does not pay for compiling the
     * schema's trigger functions and planning these statements (measured as the largest step of a handoff to a
     * standby that had only been refused until then). Nothing is left behind: the row, its events and their
     * notifications go with the rollback. Leaves the connection in auto-commit.
     */
    public void warmUp(Connection c, String holder) throws SQLException {
        String name = WARM_UP_NAME_PREFIX + UUID.randomUUID();
        c.setAutoCommit(false);
        try {
            Acquired first = acquire(c, name, holder, Duration.ofSeconds(1));
            if (first.granted()) {
                release(c, name, holder, first.token());
                Acquired again = acquire(c, name, holder, Duration.ofSeconds(1));
                if (again.granted()) {
                    renew(c, holder, List.of(new Held(name, again.token(), 1000)));
                }
            }
        } finally {
            try {
                c.rollback();
            } finally {
                c.setAutoCommit(true);
            }
        }
    }

    /** Gives the lease up if this holder still has it with this token. Returns whether it did. */
    public boolean release(Connection c, String name, String holder, long token) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(release)) {
            ps.setString(1, name);
            ps.setString(2, holder);
            ps.setLong(3, token);
            return Rows.bool(ps);
        }
    }

    /** Who holds {@code name} now, by the database clock; empty when nobody does. */
    public Optional<LeaderInfo> currentLeader(Connection c, String name) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(currentLeader)) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return Optional.empty();
                }
                LeaderInfo info = new LeaderInfo(
                        name,
                        rs.getString(1),
                        rs.getLong(2),
                        Duration.ofMillis(rs.getLong(3)),
                        rs.getTimestamp(4).toInstant());
                if (rs.next()) {
                    throw new IllegalStateException("lease " + Names.quote(name) + " has more than one row");
                }
                return Optional.of(info);
            }
        }
    }

    /**
     * The rows of the named leases as they are now, in one statement: holder, token, and whether the lease is held
     * (a holder, unexpired on the database clock). What a notification asks the loop to look at; a name without a
     * row is left out.
     */
    public List<LeaseStore.Fact> read(Connection c, Collection<String> names) throws SQLException {
        Array nameArray = c.createArrayOf("text", names.toArray(new String[0]));
        try (PreparedStatement ps = c.prepareStatement(read)) {
            ps.setArray(1, nameArray);
            List<LeaseStore.Fact> facts = new ArrayList<>(names.size());
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    facts.add(new LeaseStore.Fact(rs.getString(1), rs.getString(2), rs.getLong(3), rs.getBoolean(4)));
                }
            }
            return facts;
        } finally {
            nameArray.free();
        }
    }
}
