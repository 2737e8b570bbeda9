package dev.pglease.internal.sql;

import dev.pglease.LeaderInfo;
import dev.pglease.LeaseException;
import dev.pglease.internal.store.LeaseStore.Acquired;
import dev.pglease.internal.store.LeaseStore.Held;
import dev.pglease.internal.store.LeaseStore.Renewal;
import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Secrets;

import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Every SQL statement pglease runs against its schema, in one place. Each lease statement is a single
 * auto-commit statement, conditional, with {@code RETURNING}, reading time only with {@code clock_timestamp()}
 * on the database. Zero rows is a normal outcome returned as a value; more rows than possible is a bug and throws.
 */
public final class LeaseSql {

    private final String schema;
    private final String acquire;
    private final String renew;
    private final String release;
    /** The server-side bounds of a fenced transaction, then its lease row check: one batch. */
    private final String fence;
    private final String currentLeader;
    private final String leasesTable;

    public LeaseSql(String schema) {
        this.schema = Names.schema(schema);
        String leases = schema + ".leases";
        this.leasesTable = leases;
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
                """.formatted(leases, this.schema);
        this.renew = """
                UPDATE %s AS l
                   SET renewed_at = clock_timestamp(),
                       expires_at = clock_timestamp() + r.ttl_ms * interval '1 millisecond'
                  FROM unnest(?::text[], ?::bigint[], ?::bigint[]) AS r(name, token, ttl_ms),
                       %2$s.current_term() AS t(term)
                 WHERE l.name = r.name AND l.token = r.token AND l.holder = ? AND l.expires_at > clock_timestamp()
                   AND %2$s.token_term(l.token) >= t.term
                RETURNING l.name
                """.formatted(leases, this.schema);
        this.release = """
                UPDATE %s
                   SET holder = NULL, expires_at = clock_timestamp(), renewed_at = clock_timestamp()
                 WHERE name = ? AND holder = ? AND token = ?
                RETURNING token
                """.formatted(leases);
        String lockForFencedWrite = """
                SELECT token FROM %s
                 WHERE name = ? AND holder = ? AND token = ? AND expires_at > clock_timestamp()
                   FOR KEY SHARE
                """.formatted(leases);
        this.fence = """
                SELECT set_config('statement_timeout', ?, true),
                       set_config('lock_timeout', ?, true),
                       set_config('idle_in_transaction_session_timeout', ?, true),
                       CASE WHEN current_setting('server_version_num')::int >= 170000
                            THEN set_config('transaction_timeout', ?, true) END,
                       CASE WHEN current_setting('synchronous_commit') IN ('off', 'local')
                            THEN set_config('synchronous_commit', 'on', true) END;
                """ + lockForFencedWrite;
        this.currentLeader = """
                SELECT holder, token,
                       greatest(0, ceil(extract(epoch FROM expires_at - clock_timestamp()) * 1000))::bigint,
                       expires_at
                  FROM %s
                 WHERE name = ? AND holder IS NOT NULL AND expires_at > clock_timestamp()
                """.formatted(leases);
    }

    public String schema() {
        return schema;
    }

    /**
     * Takes the lease if it is free or expired, or held by this holder with a token of an earlier term (after a
     * failover); otherwise says who holds it and how long to wait. The new token is the schema's
     * {@code next_token}: the next counter value in the current term.
     */
    public Acquired acquire(Connection c, String name, String holder, Duration ttl) throws SQLException {
        java.sql.Savepoint beforeInsert = c.getAutoCommit() ? null : c.setSavepoint();
        try {
            return acquireOnce(c, name, holder, ttl);
        } catch (SQLException e) {
            if (!"23505".equals(e.getSQLState())) {
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
            ps.setLong(3, dev.pglease.internal.store.LeaseStore.ttlMillis(ttl));
            ps.setString(4, name);
            ps.setString(5, holder);
            ps.setLong(6, dev.pglease.internal.store.LeaseStore.ttlMillis(ttl));
            ps.setString(7, name);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return new Acquired(false, 0, null, 0);
                }
                Acquired result = new Acquired(rs.getBoolean(1), rs.getLong(2), rs.getString(3), rs.getLong(4));
                if (rs.next()) {
                    throw new IllegalStateException("acquire of lease " + Names.quote(name) + " returned more than one row");
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
                throw new IllegalStateException("renew returned " + renewed.size() + " rows for " + names.length + " leases");
            }
            return new Renewal(renewed);
        } finally {
            nameArray.free();
            tokenArray.free();
            ttlArray.free();
        }
    }

    /** Start of the warm-up's lease names (each followed by a random UUID; never committed). */
    public static final String WARM_UP_NAME_PREFIX = "pglease warm-up ";

    /**
     * Runs the grant, release, takeover and renewal statements once, on a lease name of its own, inside a
     * transaction that is then rolled back: a new session's first real grant then does not pay for compiling the
     * schema's trigger functions and planning these statements (measured as the largest step of a handoff to a
     * standby that had only been refused until then). Nothing is left behind: the row, its events and their
     * notifications go with the rollback. Leaves the connection in auto-commit.
     */
    public void warmUp(Connection c, String holder) throws SQLException {
        String name = WARM_UP_NAME_PREFIX + java.util.UUID.randomUUID();
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
            return atMostOneRow(ps, "release", name);
        }
    }

    /**
     * Fences the open transaction in one round trip (the statements are sent together and run in order): first
     * {@code isolation} when given (a transaction pglease opened itself sets its isolation there, before any
     * query); then bounds the transaction on the server to {@code millis} (each statement, each idle gap, and the
     * whole transaction where the server has {@code transaction_timeout}, PostgreSQL 17+), so a holder that stalls
     * or is cut off inside it can not keep the lease row locked, and makes its commit durable
     * ({@code synchronous_commit} raised to {@code on} where the session would acknowledge it earlier), every setting
     * local to the transaction; then locks the lease row ({@code FOR KEY SHARE}) if, and only if, this holder still
     * has it with this token and it has not expired: every change of holder or token waits until the transaction
     * ends, while the holder's own renewals and release go through. The check runs under the bounds set before it
     * in the same batch: it waits for a row lock no longer than {@code millis} (lock and statement timeout, and on
     * PostgreSQL 17+ the transaction timeout counted from the transaction's start).
     *
     * @return whether the lease row was locked (false: the database no longer lists this holder with this token)
     */
    public boolean fenceTransaction(Connection c, String isolation, long millis, String name, String holder, long token)
            throws SQLException {
        String ms = Math.max(1, millis) + "ms";
        try (PreparedStatement ps = c.prepareStatement(isolation == null ? fence : isolation + ";\n" + fence)) {
            for (int i = 1; i <= 4; i++) {
                ps.setString(i, ms);
            }
            ps.setString(5, name);
            ps.setString(6, holder);
            ps.setLong(7, token);
            int rows = -1; // of the last result, the lease row check's
            for (boolean isResult = ps.execute(); isResult || ps.getUpdateCount() != -1;
                 isResult = ps.getMoreResults()) {
                if (isResult) {
                    try (ResultSet rs = ps.getResultSet()) {
                        rows = 0;
                        while (rs.next()) {
                            rows++;
                        }
                    }
                }
            }
            if (rows > 1) {
                throw new IllegalStateException("fence check of " + Names.quote(name) + " returned more than one row");
            }
            return rows == 1;
        }
    }

    public Optional<LeaderInfo> currentLeader(Connection c, String name) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(currentLeader)) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return Optional.empty();
                }
                LeaderInfo info = new LeaderInfo(name, rs.getString(1), rs.getLong(2), Duration.ofMillis(rs.getLong(3)),
                        rs.getTimestamp(4).toInstant());
                if (rs.next()) {
                    throw new IllegalStateException("lease " + Names.quote(name) + " has more than one row");
                }
                return Optional.of(info);
            }
        }
    }

    /**
     * Whether the server refused a statement because it is read-only: a standby in recovery (lease statements fail
     * there with SQLSTATE 25006, or 55000 from a WAL function), or a read-only transaction.
     */
    public static boolean readOnly(SQLException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof SQLException s) {
                String state = s.getSQLState();
                if ("25006".equals(state)
                        || ("55000".equals(state) && String.valueOf(s.getMessage()).contains("recovery"))) {
                    return true;
                }
            }
        }
        return false;
    }

    /** The failure a read-only server causes, as its own reason: never reported as a lost lease. */
    public static LeaseException readOnlyFailure(String what, SQLException e) {
        return new LeaseException(LeaseException.Reason.DATABASE_READ_ONLY, what + ": the database is read-only (in "
                + "recovery: a standby, or a primary being demoted); lease statements need the primary: "
                + Secrets.redact(String.valueOf(e.getMessage())) + " (SQLState " + e.getSQLState() + ")", e);
    }

    /**
     * Asks the server for its timeline the way the schema's {@code current_term()} does. Returns empty when it
     * answers; otherwise the failure, for a start-up warning: tokens then fall back to the plain counter.
     *
     * @throws SQLException when the server is in recovery (read-only) or unreachable
     */
    public Optional<String> timelineUnavailable(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT pg_walfile_name(pg_current_wal_lsn())");
             ResultSet rs = ps.executeQuery()) {
            rs.next();
            return Optional.empty();
        } catch (SQLException e) {
            String state = String.valueOf(e.getSQLState());
            if (readOnly(e) || state.startsWith("08")) {
                throw e;
            }
            return Optional.of(e.getMessage() + " (SQLState " + state + ")");
        }
    }

    /** Whether the schema holds the pglease tables. */
    public boolean schemaExists(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT to_regclass(?) IS NOT NULL AND to_regclass(?) IS NOT NULL")) {
            ps.setString(1, leasesTable);
            ps.setString(2, schema + ".lease_events");
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    /** Server durability settings: synchronous_commit and fsync, as this session sees them. */
    public String[] durabilitySettings(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT current_setting('synchronous_commit'), current_setting('fsync')");
             ResultSet rs = ps.executeQuery()) {
            rs.next();
            return new String[] {rs.getString(1), rs.getString(2)};
        }
    }

    public void setSynchronousCommitOn(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SET synchronous_commit = on")) {
            ps.execute();
        }
    }

    /**
     * Makes the server give up on a lease statement after {@code millis} (waiting for a lock, or at all), so that
     * it never commits after its client stopped waiting for the answer.
     */
    public void setStatementTimeouts(Connection c, long millis) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT set_config('lock_timeout', ?, false), set_config('statement_timeout', ?, false)")) {
            ps.setString(1, millis + "ms");
            ps.setString(2, millis + "ms");
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
            }
        }
    }

    /**
     * The same as {@link #setStatementTimeouts} and a durable commit, for the current transaction only: lease
     * statements behind a transaction pooler run in a transaction of their own with these.
     */
    public void setTransactionTimeouts(Connection c, long millis) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                SELECT set_config('lock_timeout', ?, true), set_config('statement_timeout', ?, true),
                       CASE WHEN current_setting('synchronous_commit') IN ('off', 'local')
                            THEN set_config('synchronous_commit', 'on', true) END
                """)) {
            ps.setString(1, millis + "ms");
            ps.setString(2, millis + "ms");
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
            }
        }
    }

    /** Puts back every session setting pglease may have changed, before the connection returns to a pool. */
    public void resetSessionSettings(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "RESET synchronous_commit; RESET lock_timeout; RESET statement_timeout")) {
            ps.execute();
        }
    }

    /** The NOTIFY channel the schema's trigger sends lease changes to. */
    public String channel() {
        return schema + ".leases";
    }

    public void listen(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("LISTEN \"" + channel() + "\"")) {
            ps.execute();
        }
    }

    // ---- forward-only fences (a table in any database) ----

    public static String advanceFenceSql(String table) {
        return """
                INSERT INTO %s AS f (resource, token) VALUES (?, ?)
                ON CONFLICT (resource) DO UPDATE SET token = excluded.token, advanced_at = clock_timestamp()
                 WHERE f.token <= excluded.token
                RETURNING f.token
                """.formatted(table);
    }

    public static String currentFenceSql(String table) {
        return "SELECT token FROM " + table + " WHERE resource = ?";
    }

    public static String createFenceTableSql(String table) {
        return """
                CREATE TABLE IF NOT EXISTS %s (
                    resource    text        NOT NULL PRIMARY KEY,
                    token       bigint      NOT NULL CHECK (token >= 0),
                    advanced_at timestamptz NOT NULL DEFAULT clock_timestamp()
                )
                """.formatted(table);
    }

    /** Check-and-advance inside the caller's transaction: true when the fence accepted the token. */
    public static boolean advanceFence(Connection c, String table, String resource, long token) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(advanceFenceSql(table))) {
            ps.setString(1, resource);
            ps.setLong(2, token);
            return atMostOneRow(ps, "fence advance", resource);
        }
    }

    public static Optional<Long> currentFence(Connection c, String table, String resource) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(currentFenceSql(table))) {
            ps.setString(1, resource);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(rs.getLong(1)) : Optional.empty();
            }
        }
    }

    private static boolean atMostOneRow(PreparedStatement ps, String what, String name) throws SQLException {
        try (ResultSet rs = ps.executeQuery()) {
            if (!rs.next()) {
                return false;
            }
            if (rs.next()) {
                throw new IllegalStateException(what + " of " + Names.quote(name) + " returned more than one row");
            }
            return true;
        }
    }

    // ---- single-shot locks (LeaseLock): taken with the acquire statement above, then extended or unlocked ----

    /**
     * Inside an open transaction: raises {@code synchronous_commit} to {@code on} for this transaction only, and
     * only where the session would otherwise acknowledge a commit before it is durable ({@code off}, {@code local}).
     */
    public static void raiseSynchronousCommitLocally(Connection c) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                SELECT set_config('synchronous_commit', 'on', true)
                 WHERE current_setting('synchronous_commit') IN ('off', 'local')
                """);
             ResultSet rs = ps.executeQuery()) {
            while (rs.next()) {
                rs.getString(1);
            }
        }
    }

    /**
     * Extends a lock this holder still has with this token and that has not expired: it now expires {@code ttl}
     * after this statement (shorter or longer than before). The extension time is kept in {@code renewed_at}, the
     * point {@link #unlockLock} measures keep-at-least from. Returns whether the lock was extended.
     */
    public boolean extendLock(Connection c, String name, String holder, long token, Duration ttl) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                UPDATE %s
                   SET renewed_at = clock_timestamp(),
                       expires_at = clock_timestamp() + ? * interval '1 millisecond'
                 WHERE name = ? AND holder = ? AND token = ? AND expires_at > clock_timestamp()
                   AND %2$s.token_term(token) >= %2$s.current_term()
                RETURNING token
                """.formatted(leasesTable, schema))) {
            ps.setLong(1, dev.pglease.internal.store.LeaseStore.ttlMillis(ttl));
            ps.setString(2, name);
            ps.setString(3, holder);
            ps.setLong(4, token);
            return atMostOneRow(ps, "lock extension", name);
        }
    }

    /**
     * Unlocks a lock this holder still has with this token. If less than {@code keepAtLeast} has passed since it
     * was taken or last extended ({@code renewed_at}, database clock), the holder stays and the lock expires at
     * {@code renewed_at + keepAtLeast} (never later than it would have anyway); otherwise it is released now. The
     * token does not change: the next acquire bumps it. Returns whether this holder still had the lock.
     */
    public boolean unlockLock(Connection c, String name, String holder, long token, Duration keepAtLeast) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                UPDATE %s AS l
                   SET holder = CASE WHEN l.renewed_at + ? * interval '1 millisecond' > n.now THEN l.holder END,
                       expires_at = CASE WHEN l.renewed_at + ? * interval '1 millisecond' > n.now
                                         THEN least(l.expires_at, l.renewed_at + ? * interval '1 millisecond')
                                         ELSE n.now END
                  FROM (SELECT clock_timestamp() AS now) n
                 WHERE l.name = ? AND l.holder = ? AND l.token = ? AND l.expires_at > n.now
                RETURNING l.token
                """.formatted(leasesTable))) {
            long keep = keepAtLeast.toMillis();
            ps.setLong(1, keep);
            ps.setLong(2, keep);
            ps.setLong(3, keep);
            ps.setString(4, name);
            ps.setString(5, holder);
            ps.setLong(6, token);
            return atMostOneRow(ps, "unlock", name);
        }
    }

    // ---- fast failover: crash takeover when the holder's session ends (see the version 6 migration) ----

    /**
     * Takes the lease's session-level advisory lock on this connection, waiting at most {@code waitMillis} for
     * candidates that hold it briefly. Returns whether it was taken.
     */
    public boolean fastFailoverLock(Connection c, String name, int waitMillis) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT " + schema + ".fast_failover_lock(?, ?)")) {
            ps.setString(1, name);
            ps.setInt(2, waitMillis);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    /** Gives back the lease's advisory lock taken by {@link #fastFailoverLock}. */
    public void fastFailoverUnlock(Connection c, String name) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT pg_advisory_unlock(" + schema + ".fast_failover_key(?))")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
            }
        }
    }

    /** Registers this holder's current grant for crash takeover; the server checks this session holds the lock. */
    public boolean fastFailoverRegister(Connection c, String name, String holder, long token) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT " + schema + ".fast_failover_register(?, ?, ?)")) {
            ps.setString(1, name);
            ps.setString(2, holder);
            ps.setLong(3, token);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    /**
     * Takes over an unexpired lease whose registered holder's session has ended (this session must hold the lease's
     * advisory lock), with the next token by the same rule as every grant. Returns the new token, or empty when the lease is not taken.
     */
    public Optional<Long> takeOverEndedSession(Connection c, String name, String holder, Duration ttl) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                UPDATE %1$s AS l
                   SET holder = ?,
                       token = %2$s.fast_failover_next_token(l.token),
                       acquired_at = clock_timestamp(),
                       renewed_at = clock_timestamp(),
                       expires_at = clock_timestamp() + ? * interval '1 millisecond',
                       handoff_from = NULL, handoff_to = NULL, handoff_until = NULL
                 WHERE l.name = ? AND l.holder IS NOT NULL AND l.holder <> ? AND l.expires_at > clock_timestamp()
                   AND %2$s.holder_session_ended(l.name, l.token)
                   AND (l.handoff_until IS NULL OR l.handoff_until <= clock_timestamp()
                        OR (?::text IS DISTINCT FROM l.handoff_from
                            AND (l.handoff_to IS NULL OR starts_with(?::text, l.handoff_to))))
                RETURNING l.token
                """.formatted(leasesTable, schema))) {
            ps.setString(1, holder);
            ps.setLong(2, dev.pglease.internal.store.LeaseStore.ttlMillis(ttl));
            ps.setString(3, name);
            ps.setString(4, holder);
            ps.setString(5, holder);
            ps.setString(6, holder);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return Optional.empty();
                }
                long token = rs.getLong(1);
                if (rs.next()) {
                    throw new IllegalStateException("takeover of " + Names.quote(name) + " returned more than one row");
                }
                return Optional.of(token);
            }
        }
    }

    /** Blocks until no session holds the lease's advisory lock exclusively, then holds it shared. */
    public void fastFailoverWatch(Connection c, String name) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT pg_advisory_lock_shared(" + schema + ".fast_failover_key(?))")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
            }
        }
    }

    public void fastFailoverUnwatch(Connection c, String name) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "SELECT pg_advisory_unlock_shared(" + schema + ".fast_failover_key(?))")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
            }
        }
    }
}
