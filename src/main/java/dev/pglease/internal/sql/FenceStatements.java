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

    /** The server-side bounds of a fenced transaction, then its lease row check: one batch. */
    private final String fence;

    private final String leases;

    public FenceStatements(String schema) {
        this.leases = Names.schema(schema) + ".leases";
        this.fence = """
                SELECT set_config('statement_timeout', ?, true),
                       set_config('lock_timeout', ?, true),
                       set_config('idle_in_transaction_session_timeout', ?, true),
                       CASE WHEN current_setting('server_version_num')::int >= 170000
                            THEN set_config('transaction_timeout', ?, true) END,
                       CASE WHEN current_setting('synchronous_commit') IN ('off', 'local')
                            THEN set_config('synchronous_commit', 'on', true) END;
                SELECT token FROM %s
                 WHERE name = ? AND holder = ? AND token = ? AND expires_at > clock_timestamp()
                   FOR KEY SHARE
                """.formatted(leases);
    }

    /**
     * Fences the open transaction in one round trip (the statements are sent together and run in order): first
     * {@link #READ_COMMITTED} when {@code readCommitted} (a transaction pglease opened itself sets its isolation
     * there, before any query); then bounds the transaction on the server to {@code millis} (each statement, each
     * idle gap, and the whole transaction where the server has {@code transaction_timeout}, PostgreSQL 17+), so a
     * holder that stalls or is cut off inside it can not keep the lease row locked, and makes its commit durable
     * ({@code synchronous_commit} raised to {@code on} where the session would acknowledge it earlier), every setting
     * local to the transaction; then locks the lease row ({@code FOR KEY SHARE}) if, and only if, this holder still
     * has it with this token and it has not expired: every change of holder or token waits until the transaction
     * ends, while the holder's own renewals and release go through. The check runs under the bounds set before it
     * in the same batch: it waits for a row lock no longer than {@code millis} (lock and statement timeout, and on
     * PostgreSQL 17+ the transaction timeout counted from the transaction's start).
     *
     * @return whether the lease row was locked (false: the database no longer lists this holder with this token)
     */
    public boolean fenceTransaction(
            Connection c, boolean readCommitted, long millis, String name, String holder, long token)
            throws SQLException {
        String ms = Math.max(1, millis) + "ms";
        try (PreparedStatement ps = c.prepareStatement(readCommitted ? READ_COMMITTED + ";\n" + fence : fence)) {
            for (int i = 1; i <= 4; i++) {
                ps.setString(i, ms);
            }
            ps.setString(5, name);
            ps.setString(6, holder);
            ps.setLong(7, token);
            int rows = -1; // of the last result, the lease row check's
            for (boolean isResult = ps.execute();
                    isResult || ps.getUpdateCount() != -1;
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

    /** Check-and-advance inside the caller's transaction: true when the fence accepted the token. */
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
