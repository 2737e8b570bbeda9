package dev.pglease.internal.sql;

import dev.pglease.internal.util.Names;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Optional;

/**
 * The fences: the lease row check that opens a fenced transaction (with the transaction's server-side bounds), and
 * the forward fence, a table {@code (resource, token)} in any database whose token only moves up.
 */
public final class FenceStatements {

    /** The statement that makes a transaction pglease opens READ COMMITTED; it must come before any query. */
    public static final String READ_COMMITTED = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED";

    /** The schema's fence function, called in the open transaction. */
    private final String fence;

    private final String leases;
    private final String advanceGranted;

    public FenceStatements(String schema) {
        String s = Names.schema(schema);
        this.leases = s + ".leases";
        this.fence = "SELECT " + s + ".fence(?, ?, ?), pg_catalog.pg_backend_pid(), pg_catalog.txid_current()";
        this.advanceGranted = "SELECT " + s + ".advance_fence(?, ?, ?)";
    }

    /**
     * Fences the open transaction in one round trip: first {@link #READ_COMMITTED} when {@code readCommitted} (a
     * transaction pglease opened itself sets its isolation there, before any query, in the same batch); then the
     * schema's {@code fence(lease, token, millis)}, which bounds the rest of the transaction on the server to
     * {@code millis} (each statement, lock wait and idle gap, and on PostgreSQL 17+ the transaction), locks the lease
     * row {@code FOR KEY SHARE} if, and only if, this login holds the lease with this token and it has not expired
     * (every change of holder or token then waits until the transaction ends, while the holder's renewals go on),
     * tightens the bounds to the lease's remaining time, makes the commit durable and marks the transaction fenced
     * for the lease (what a protected table checks).
     *
     * @return whether the lease row was locked; false when the database no longer lists this login with this token
     *     (SQLSTATE PL001: the transaction is then aborted and must be rolled back)
     */
    public boolean fenceTransaction(
            Connection c, boolean readCommitted, long millis, String name, String holder, long token)
            throws SQLException {
        try {
            fence(c, readCommitted, millis, name, holder, token);
            return true;
        } catch (SQLException e) {
            if (SqlErrors.staleFence(e)) {
                return false;
            }
            throw e;
        }
    }

    /** The server transaction a fence locked the lease row in: its backend and its transaction id. */
    public record FencedTransaction(int pid, long xid) {}

    /**
     * {@link #fenceTransaction}, in the same round trip telling which server transaction was fenced (the fence's row
     * lock gives it a transaction id).
     *
     * @return the fenced transaction
     * @throws SQLException SQLSTATE PL001 ({@link SqlErrors#staleFence}) when the database does not list this login
     *                      with this token, the lease unexpired (its message says which of these failed)
     */
    public FencedTransaction fence(
            Connection c, boolean readCommitted, long millis, String name, String holder, long token)
            throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(readCommitted ? READ_COMMITTED + ";\n" + fence : fence)) {
            ps.setString(1, name);
            ps.setLong(2, token);
            ps.setLong(3, Math.max(1, Math.min(millis, MAX_BOUND_MILLIS)));
            FencedTransaction fenced = null;
            for (boolean isResult = ps.execute();
                    isResult || ps.getUpdateCount() != -1;
                    isResult = ps.getMoreResults()) {
                if (isResult) {
                    try (ResultSet rs = ps.getResultSet()) {
                        while (rs.next()) {
                            fenced = new FencedTransaction(rs.getInt(2), rs.getLong(3));
                        }
                    }
                }
            }
            if (fenced == null) {
                throw new SQLException("the fence answered no row");
            }
            return fenced;
        }
    }

    /**
     * Whether backend {@code pid} is still in transaction {@code xid} (by {@code pg_stat_activity}, on another
     * connection of the same login).
     */
    public static boolean stillRunning(Connection c, FencedTransaction fenced) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a"
                + " WHERE a.pid = ? AND a.backend_xid::text::bigint = ?)")) {
            ps.setInt(1, fenced.pid());
            ps.setLong(2, fenced.xid() & 0xFFFF_FFFFL);
            ps.setQueryTimeout(5);
            return Rows.bool(ps);
        }
    }

    /** The longest bound the schema's fence takes (one day). */
    private static final long MAX_BOUND_MILLIS = 86_400_000L;

    /**
     * The lease row check alone, without the bounds and the durable commit of {@link #fenceTransaction}: whether
     * this holder still has the lease with this token and it has not expired, locking the row {@code FOR SHARE}
     * with {@code lockRow}, reading it unlocked without. Not a fence: the node command's negative controls use it to
     * show what the real fence prevents.
     */
    public boolean leaseRowHeld(Connection c, String name, String holder, long token, boolean lockRow)
            throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT 1 FROM " + leases + " WHERE name = ?"
                + " AND holder = ? AND token = ? AND expires_at > clock_timestamp()" + (lockRow ? " FOR SHARE" : ""))) {
            ps.setString(1, name);
            ps.setString(2, holder);
            ps.setLong(3, token);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next();
            }
        }
    }

    // ---- forward fences (a table in any database) ----

    /** Makes the open transaction READ COMMITTED; the transaction's first statement. */
    public static void readCommitted(Connection c) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute(READ_COMMITTED);
        }
    }

    /**
     * Check-and-advance on the schema's own fence table ({@code <schema>.advance_fence}), inside the caller's
     * transaction: true when the fence accepted the token, false when it is stale. A token the lease never granted is
     * refused by the schema (SQLSTATE PL001).
     */
    public boolean advanceGranted(Connection c, String resource, String lease, long token) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(advanceGranted)) {
            ps.setString(1, resource);
            ps.setString(2, lease);
            ps.setLong(3, token);
            return Rows.bool(ps);
        }
    }

    /** Check-and-advance of a custom fence table inside the caller's transaction: true when it accepted the token. */
    public static boolean advance(Connection c, String table, String resource, long token) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("""
                INSERT INTO %s AS f (resource, token) VALUES (?, ?)
                ON CONFLICT (resource) DO UPDATE SET token = excluded.token, advanced_at = clock_timestamp()
                 WHERE f.token <= excluded.token
                RETURNING f.token
                """.formatted(table))) {
            ps.setString(1, resource);
            ps.setLong(2, token);
            return Rows.atMostOne(ps, "fence advance", resource);
        }
    }

    /** The fence value of {@code resource}, if any write was accepted yet. */
    public static Optional<Long> current(Connection c, String table, String resource) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT token FROM " + table + " WHERE resource = ?")) {
            ps.setString(1, resource);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(rs.getLong(1)) : Optional.empty();
            }
        }
    }

    /**
     * Creates the fence table if it does not exist, with its forward-only guard: a row trigger (its function
     * {@code pglease_fence_forward_only()} created in the table's schema, shared by every fence table there) that
     * lets an UPDATE only keep or raise the token of the same resource and refuses DELETE, and a statement trigger
     * that refuses TRUNCATE to anyone but the table's owner. A writer that may update the table can then never set a
     * fence back. A table created earlier without the guard gets it.
     */
    public static void createTable(Connection c, String table) throws SQLException {
        int dot = table.indexOf('.');
        String guard = (dot < 0 ? "" : table.substring(0, dot + 1)) + "pglease_fence_forward_only";
        try (Statement s = c.createStatement()) {
            s.execute("""
                    CREATE TABLE IF NOT EXISTS %s (
                        resource    text        NOT NULL PRIMARY KEY,
                        token       bigint      NOT NULL CHECK (token >= 0),
                        advanced_at timestamptz NOT NULL DEFAULT clock_timestamp()
                    )
                    """.formatted(table));
            s.execute("""
                    DO $create$
                    BEGIN
                        IF to_regprocedure('%2$s()') IS NULL THEN
                            EXECUTE $function$
                            CREATE FUNCTION %2$s() RETURNS trigger
                                LANGUAGE plpgsql
                                SET search_path = pg_catalog, pg_temp
                            AS $guard$
                            BEGIN
                                IF TG_LEVEL = 'STATEMENT' THEN
                                    IF pg_has_role(current_user, (SELECT c.relowner FROM pg_class c
                                                                   WHERE c.oid = TG_RELID), 'MEMBER') THEN
                                        RETURN NULL;
                                    END IF;
                                    RAISE EXCEPTION 'fence table %%.%% only moves forward: role %% may not truncate it',
                                                    TG_TABLE_SCHEMA, TG_TABLE_NAME, current_user
                                        USING ERRCODE = 'insufficient_privilege';
                                END IF;
                                IF TG_OP = 'UPDATE' AND NEW.resource = OLD.resource AND NEW.token >= OLD.token THEN
                                    RETURN NEW;
                                END IF;
                                RAISE EXCEPTION 'fence table %%.%% only moves forward: %% of the fence of %% refused '
                                                '(a fence only advances its token, now %%)', TG_TABLE_SCHEMA,
                                                TG_TABLE_NAME, lower(TG_OP), quote_literal(OLD.resource), OLD.token
                                    USING ERRCODE = 'restrict_violation';
                            END
                            $guard$
                            $function$;
                        END IF;
                        IF NOT EXISTS (SELECT 1 FROM pg_trigger
                                        WHERE tgrelid = '%1$s'::regclass AND tgname = 'fence_forward_only') THEN
                            CREATE TRIGGER fence_forward_only BEFORE UPDATE OR DELETE ON %1$s
                                FOR EACH ROW EXECUTE FUNCTION %2$s();
                        END IF;
                        IF NOT EXISTS (SELECT 1 FROM pg_trigger
                                        WHERE tgrelid = '%1$s'::regclass AND tgname = 'fence_no_truncate') THEN
                            CREATE TRIGGER fence_no_truncate BEFORE TRUNCATE ON %1$s
                                FOR EACH STATEMENT EXECUTE FUNCTION %2$s();
                        END IF;
                    END
                    $create$
                    """.formatted(table, guard));
        }
    }
}
