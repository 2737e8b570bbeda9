package dev.pglease.cli;

import dev.pglease.internal.sql.ProtectionStatements;
import dev.pglease.internal.sql.SqlErrors;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.List;
import javax.sql.DataSource;

/**
 * The tables of the node command's workload, {@code <work schema>.fenced_counter} and
 * {@code <work schema>.fenced_counter_log}: made, granted and protected once by their owner
 * ({@code pglease node --setup-workload}), so that the nodes run with a candidate-only login.
 */
final class FencedCounterTables {

    /** Serialises the set-up of concurrent nodes (CREATE TABLE IF NOT EXISTS races otherwise). */
    private static final long SETUP_LOCK = 7291001;

    private FencedCounterTables() {}

    /** What {@link #setUp} did: the tables, the role granted, and the lease that protects them (or null). */
    record Setup(List<String> tables, String grantedTo, String protectedWith) {}

    private static List<String> tables(String workSchema) {
        return List.of(workSchema + ".fenced_counter", workSchema + ".fenced_counter_log");
    }

    private static void create(Statement s, String workSchema) throws SQLException {
        s.execute("SELECT pg_advisory_xact_lock(" + SETUP_LOCK + ")");
        s.execute("CREATE TABLE IF NOT EXISTS " + workSchema + ".fenced_counter ("
                + "name text PRIMARY KEY, value bigint NOT NULL, token bigint NOT NULL)");
        s.execute("CREATE TABLE IF NOT EXISTS " + workSchema + ".fenced_counter_log ("
                + "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, "
                + "token bigint NOT NULL, holder text NOT NULL, value bigint NOT NULL, "
                + "at timestamptz NOT NULL DEFAULT clock_timestamp())");
    }

    /**
     * As the owner of the tables to be: creates the work schema (unless it exists) and the tables, grants the
     * candidate role what the writes need, and, outside the pglease schema (whose own tables have their own guards),
     * protects both tables with {@code lease}. One transaction; running it again changes nothing.
     */
    static Setup setUp(DataSource ds, String pgleaseSchema, String workSchema, String lease, String candidateRole)
            throws SQLException {
        boolean protect = !workSchema.equals(pgleaseSchema);
        try (Connection c = ds.getConnection()) {
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                if (protect) {
                    s.execute("CREATE SCHEMA IF NOT EXISTS " + workSchema);
                }
                create(s, workSchema);
                s.execute("GRANT USAGE ON SCHEMA " + workSchema + " TO " + candidateRole);
                s.execute("GRANT SELECT, INSERT, UPDATE ON " + workSchema + ".fenced_counter TO " + candidateRole);
                s.execute("GRANT SELECT, INSERT ON " + workSchema + ".fenced_counter_log TO " + candidateRole);
            }
            if (protect) {
                ProtectionStatements protection = new ProtectionStatements(pgleaseSchema);
                for (String table : tables(workSchema)) {
                    String current = protection
                            .table(c, table)
                            .map(ProtectionStatements.Table::lease)
                            .orElse(null);
                    if (current != null && !current.equals(lease)) {
                        throw new IllegalStateException(table + " is protected by lease " + current + " already, "
                                + "not by " + lease + ": run `pglease unprotect --table " + table + "` first");
                    }
                    if (current == null) {
                        protection.protect(c, table, lease);
                    }
                }
            }
            c.commit();
        }
        return new Setup(tables(workSchema), candidateRole, protect ? lease : null);
    }

    /**
     * At a node's start: the tables exist, or are made now when this login may (a node run as the owner, as the
     * tests and the fault kit do); otherwise a failure that says to run the set-up as their owner.
     */
    static void ensure(DataSource ds, String workSchema, String lease) throws SQLException {
        try (Connection c = ds.getConnection()) {
            if (exist(c, workSchema)) {
                return;
            }
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                create(s, workSchema);
                c.commit();
            } catch (SQLException e) {
                c.rollback();
                if (SqlErrors.insufficientPrivilege(e) || "3F000".equals(e.getSQLState())) {
                    throw new IllegalStateException(
                            "the tables of --work fenced-counter (" + String.join(", ", tables(workSchema))
                                    + ") do not exist, and this login may not create them ("
                                    + e.getMessage() + "): run `pglease node --lease " + lease
                                    + " --work fenced-counter "
                                    + "--work-schema " + workSchema
                                    + " --setup-workload` once as their owner (the schema's "
                                    + "owner) first",
                            e);
                }
                throw e;
            }
        }
    }

    /** From the catalog, which every login may read (to_regclass would need USAGE on the schema). */
    private static boolean exist(Connection c, String workSchema) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT count(*) = 2 FROM pg_catalog.pg_class t "
                + "JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace "
                + "WHERE n.nspname = ? AND t.relname IN ('fenced_counter', 'fenced_counter_log')")) {
            ps.setString(1, workSchema);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }
}
