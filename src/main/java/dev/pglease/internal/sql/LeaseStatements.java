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
import java.sql.Savepoint;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import java.util.UUID;

/**
 * The lease statements of a schema: acquire, renew, release, who leads now, and the warm-up of a new session. Each
 * is a single statement, conditional, with {@code RETURNING}, reading time only with {@code clock_timestamp()} on
 * the database. Zero rows is a normal outcome returned as a value; more rows than possible is a bug and throws.
 */
public final class LeaseStatements {

    /** Start of the warm-up's lease names (each followed by a random UUID; never committed). */
    public static final String WARM_UP_NAME_PREFIX = "pglease warm-up ";

    private final String acquire;
    private final String renew;
    private final String release;
    private final String currentLeader;
    private final String read;

    public LeaseStatements(String schema) {
        String leases = Names.schema(schema) + ".leases";
        // A denied acquire must not lock the row: it would queue the holder's renewal behind the holder's own
        // fenced transactions. The INSERT ... ON CONFLICT (which locks the row and re-checks) only runs when this
        // statement's snapshot shows the lease free or expired.
        this.acquire = """
                WITH attempt AS (
                    INSERT INTO %1$s AS l (name, holder, token, acquired_at, renewed_at, expires_at)
                    SELECT ?, ?, %2$s.next_token(0), clock_timestamp(), clock_timestamp(),
                           clock_timestamp() + ? * interval '1 millisecond'
                     WHERE NOT EXISTS (SELECT 1 FROM %1$s s
                                        WHERE s.name = ? AND s.holder IS NOT NULL AND s.expires_at > clock_timestamp()
                                          AND NOT (s.holder = ? AND %2$s.token_term(s.token) < %2$s.current_term()))
                    ON CONFLICT (name) DO UPDATE
                       SET holder = excluded.holder,
                           token = %2$s.next_token(l.token),
                           acquired_at = clock_timestamp(),
                           renewed_at = clock_timestamp(),
                           expires_at = clock_timestamp() + ? * interval '1 millisecond',
                           handoff_from = NULL, handoff_to = NULL, handoff_until = NULL
                     WHERE (l.holder IS NULL OR l.expires_at <= clock_timestamp()
                            OR (l.holder = excluded.holder AND %2$s.token_term(l.token) < %2$s.current_term()))
                       AND (l.handoff_until IS NULL OR l.handoff_until <= clock_timestamp()
                            OR (excluded.holder IS DISTINCT FROM l.handoff_from
                                AND (l.handoff_to IS NULL OR starts_with(excluded.holder, l.handoff_to))))
                    RETURNING l.token, l.holder
                )
                SELECT true, a.token, a.holder, 0::bigint FROM attempt a
                UNION ALL
                SELECT false, c.token,
                       CASE WHEN c.holder IS NOT NULL AND c.expires_at > clock_timestamp() THEN c.holder END,
                       greatest(0, ceil(extract(epoch FROM
                           greatest(c.expires_at, coalesce(c.handoff_until, c.expires_at)) - clock_timestamp()) * 1000))::bigint
                  FROM %1$s c
                 WHERE c.name = ? AND NOT EXISTS (SELECT 1 FROM attempt)
                """.formatted(leases, schema);
        this.renew = """
                UPDATE %s AS l
                   SET renewed_at = clock_timestamp(),
                       expires_at = clock_timestamp() + r.ttl_ms * interval '1 millisecond'
                  FROM unnest(?::text[], ?::bigint[], ?::bigint[]) AS r(name, token, ttl_ms),
                       %2$s.current_term() AS t(term)
                 WHERE l.name = r.name AND l.token = r.token AND l.holder = ? AND l.expires_at > clock_timestamp()
                   AND %2$s.token_term(l.token) >= t.term
                RETURNING l.name
                """.formatted(leases, schema);
        this.release = """
                UPDATE %s
                   SET holder = NULL, expires_at = clock_timestamp(), renewed_at = clock_timestamp()
                 WHERE name = ? AND holder = ? AND token = ?
                RETURNING token
                """.formatted(leases);
        this.currentLeader = """
                SELECT holder, token,
                       greatest(0, ceil(extract(epoch FROM expires_at - clock_timestamp()) * 1000))::bigint,
                       expires_at
                  FROM %s
                 WHERE name = ? AND holder IS NOT NULL AND expires_at > clock_timestamp()
                """.formatted(leases);
        this.read = """
                SELECT name, holder, token, holder IS NOT NULL AND expires_at > clock_timestamp()
                  FROM %s
                 WHERE name = ANY (?)
                """.formatted(leases);
    }

    /**
     * Takes the lease if it is free or expired, or held by this holder with a token of an earlier term (after a
     * failover); otherwise says who holds it and how long to wait. The new token is the schema's
     * {@code next_token}: the next counter value in the current term.
     */
    public Acquired acquire(Connection c, String name, String holder, Duration ttl) throws SQLException {
        Savepoint beforeInsert = c.getAutoCommit() ? null : c.setSavepoint();
        try {
            return acquireOnce(c, name, holder, ttl);
        } catch (SQLException e) {
            if (!SqlErrors.uniqueViolation(e)) {
                throw e;
            }
            // Two first acquires of a new lease raced: the other one's row collided with ours in the (name, token)
            // key, which ON CONFLICT (name) does not arbitrate. The row exists now: this attempt sees it.
            if (beforeInsert != null) {
                c.rollback(beforeInsert);
            }
            return acquireOnce(c, name, holder, ttl);
        }
    }

    private Acquired acquireOnce(Connection c, String name, String holder, Duration ttl) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(acquire)) {
            ps.setString(1, name);
            ps.setString(2, holder);
            ps.setLong(3, LeaseStore.ttlMillis(ttl));
            ps.setString(4, name);
            ps.setString(5, holder);
            ps.setLong(6, LeaseStore.ttlMillis(ttl));
            ps.setString(7, name);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return new Acquired(false, 0, null, 0);
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
     * Renews every listed lease in one statement; a lease is renewed only if this holder still has it with the
     * same token, it has not expired and the token is of the current term (a grant made before a failover is not
     * renewed: its holder acquires the lease again). Returns the names that were renewed.
     */
    public Renewal renew(Connection c, String holder, List<Held> leases) throws SQLException {
        String[] names = new String[leases.size()];
        Long[] tokens = new Long[leases.size()];
        Long[] ttls = new Long[leases.size()];
        for (int i = 0; i < names.length; i++) {
            Held h = leases.get(i);
            names[i] = h.name();
            tokens[i] = h.token();
            ttls[i] = h.ttlMillis();
        }
        Array nameArray = c.createArrayOf("text", names);
        Array tokenArray = c.createArrayOf("bigint", tokens);
        Array ttlArray = c.createArrayOf("bigint", ttls);
        try (PreparedStatement ps = c.prepareStatement(renew)) {
            ps.setArray(1, nameArray);
            ps.setArray(2, tokenArray);
            ps.setArray(3, ttlArray);
            ps.setString(4, holder);
            List<String> renewed = new ArrayList<>(names.length);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    renewed.add(rs.getString(1));
                }
            }
            if (renewed.size() > names.length) {
                throw new IllegalStateException(
                        "renew returned " + renewed.size() + " rows for " + names.length + " leases");
            }
            return new Renewal(renewed);
        } finally {
            nameArray.free();
            tokenArray.free();
            ttlArray.free();
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
            Acquired first = acquireOnce(c, name, holder, Duration.ofSeconds(1));
            if (first.granted()) {
                release(c, name, holder, first.token());
                Acquired again = acquireOnce(c, name, holder, Duration.ofSeconds(1));
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
            return Rows.atMostOne(ps, "release", name);
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
