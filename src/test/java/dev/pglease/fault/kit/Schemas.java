package dev.pglease.fault.kit;

import java.lang.reflect.Method;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import javax.sql.DataSource;
import org.postgresql.ds.PGSimpleDataSource;

/** Prepares a schema for a run: the library's own migrations, plus the fenced counter the node command writes. */
public final class Schemas {
    private Schemas() {}

    /** Whether the core library is on the classpath. */
    public static boolean coreAvailable() {
        try {
            Class.forName("dev.pglease.PgLease");
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }

    /** Whether the node command is on the classpath. */
    public static boolean nodeCommandAvailable() {
        try {
            Class.forName("dev.pglease.cli.Main");
            return true;
        } catch (ClassNotFoundException e) {
            return false;
        }
    }

    public static DataSource dataSource(String jdbcUrl) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setUrl(jdbcUrl);
        return ds;
    }

    /** Migrates {@code schema} with the library (or a minimal stand-in when the library is absent). */
    public static void prepare(String jdbcUrl, String schema) {
        try {
            if (coreAvailable()) {
                Class<?> c = Class.forName("dev.pglease.PgLease");
                Method m = c.getMethod("migrate", DataSource.class, String.class);
                m.invoke(null, dataSource(jdbcUrl), schema);
            } else {
                minimal(jdbcUrl, schema);
            }
            try (Connection c = DriverManager.getConnection(jdbcUrl);
                    Statement st = c.createStatement()) {
                st.execute("CREATE TABLE IF NOT EXISTS " + schema + ".fenced_counter(name text PRIMARY KEY,"
                        + " value bigint NOT NULL DEFAULT 0, token bigint NOT NULL DEFAULT 0)");
                st.execute("CREATE TABLE IF NOT EXISTS " + schema + ".fenced_counter_log(id bigint GENERATED ALWAYS AS"
                        + " IDENTITY PRIMARY KEY, name text NOT NULL, token bigint NOT NULL, holder text NOT NULL,"
                        + " value bigint NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())");
                audit(st, schema);
            }
        } catch (ReflectiveOperationException | SQLException e) {
            throw new IllegalStateException("cannot prepare schema " + schema, e);
        }
    }

    /** Test-only: the schema's term function answers 1 whatever the timeline (see FaultCluster.Options#termsOff). */
    public static void termsOff(String jdbcUrl, String schema) {
        try (Connection c = DriverManager.getConnection(jdbcUrl);
                Statement st = c.createStatement()) {
            st.execute("CREATE OR REPLACE FUNCTION " + schema + ".current_term() RETURNS bigint LANGUAGE sql"
                    + " AS 'SELECT 1::bigint'");
        } catch (SQLException e) {
            throw new IllegalStateException("cannot switch term tokens off in schema " + schema, e);
        }
    }

    /**
     * The kit's own record of every version of every lease row, written by the database in the same transaction as
     * the change: for each grant, the last expiry the database gave it (renewals included). The checker closes a grant
     * that was never released nor seen ending at that expiry (invariant 6), so an overlap with a grant nobody observed
     * is still visible.
     */
    private static void audit(Statement st, String s) throws SQLException {
        st.execute("CREATE TABLE IF NOT EXISTS " + s + ".kit_lease_audit(id bigint GENERATED ALWAYS AS IDENTITY"
                + " PRIMARY KEY, name text NOT NULL, token bigint NOT NULL, holder text, expires_at timestamptz NOT NULL,"
                + " at timestamptz NOT NULL DEFAULT clock_timestamp())");
        st.execute("CREATE OR REPLACE FUNCTION " + s + ".kit_lease_audit_trg() RETURNS trigger LANGUAGE plpgsql AS $$"
                + " BEGIN INSERT INTO " + s + ".kit_lease_audit(name, token, holder, expires_at) VALUES (NEW.name,"
                + " NEW.token, NEW.holder, NEW.expires_at); RETURN NEW; END $$");
        st.execute("DROP TRIGGER IF EXISTS kit_lease_audit_trg ON " + s + ".leases");
        st.execute("CREATE TRIGGER kit_lease_audit_trg AFTER INSERT OR UPDATE ON " + s + ".leases FOR EACH ROW"
                + " EXECUTE FUNCTION " + s + ".kit_lease_audit_trg()");
    }

    /** The lease table and event trigger with the shape described in docs/protocol.md (for runs without the library). */
    private static void minimal(String jdbcUrl, String s) throws SQLException {
        try (Connection c = DriverManager.getConnection(jdbcUrl);
                Statement st = c.createStatement()) {
            st.execute("CREATE SCHEMA IF NOT EXISTS " + s);
            st.execute("CREATE TABLE IF NOT EXISTS " + s + ".leases(name text PRIMARY KEY, holder text,"
                    + " token bigint NOT NULL DEFAULT 0, acquired_at timestamptz, renewed_at timestamptz,"
                    + " expires_at timestamptz NOT NULL)");
            st.execute("CREATE TABLE IF NOT EXISTS " + s + ".lease_events(id bigint GENERATED ALWAYS AS IDENTITY"
                    + " PRIMARY KEY, name text NOT NULL, token bigint NOT NULL, holder text, previous_holder text,"
                    + " kind text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())");
            st.execute("CREATE OR REPLACE FUNCTION " + s + ".lease_events_trg() RETURNS trigger LANGUAGE plpgsql AS $$"
                    + " BEGIN IF TG_OP = 'INSERT' OR NEW.holder IS DISTINCT FROM OLD.holder OR NEW.token <> OLD.token THEN"
                    + " INSERT INTO " + s
                    + ".lease_events(name, token, holder, previous_holder, kind) VALUES (NEW.name,"
                    + " NEW.token, NEW.holder, CASE WHEN TG_OP = 'UPDATE' THEN OLD.holder END, CASE WHEN NEW.holder IS NULL"
                    + " THEN 'released' WHEN TG_OP = 'INSERT' THEN 'acquired' ELSE 'taken_over' END); END IF;"
                    + " RETURN NEW; END $$");
            st.execute("DROP TRIGGER IF EXISTS lease_events_trg ON " + s + ".leases");
            st.execute("CREATE TRIGGER lease_events_trg AFTER INSERT OR UPDATE ON " + s + ".leases FOR EACH ROW"
                    + " EXECUTE FUNCTION " + s + ".lease_events_trg()");
        }
    }
}
