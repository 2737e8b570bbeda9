package dev.pglease.demo;

import dev.pglease.ForwardFence;
import dev.pglease.internal.sql.ProtectionStatements;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.Optional;
import javax.sql.DataSource;

/**
 * The demo's own tables, in a schema of their own (default {@code pglease_demo}, dropped and created again on every
 * run, and marked as the demo's so that no other schema is ever dropped): the subscription service's due renewals,
 * protected with the lease, and the payment provider's records and fence.
 */
final class DemoSchema {

    /** The comment that marks a schema as the demo's own: only such a schema is dropped by a run. */
    static final String MARK = "pglease demo: dropped and created again by every run of pglease demo";

    private DemoSchema() {}

    /**
     * Why {@code schema} must not be dropped by the demo: it exists and is not marked as the demo's own (empty when
     * it does not exist, or a run of the demo made it).
     */
    static Optional<String> notTheDemos(DataSource ds, String schema) throws SQLException {
        try (Connection c = ds.getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT obj_description(n.oid, 'pg_namespace'), "
                        + "(SELECT count(*) FROM pg_class t WHERE t.relnamespace = n.oid) FROM pg_namespace n "
                        + "WHERE n.nspname = ?")) {
            ps.setString(1, schema);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next() || MARK.equals(rs.getString(1))) {
                    return Optional.empty();
                }
                return Optional.of("schema " + schema + " exists (" + rs.getLong(2) + " tables and other relations) "
                        + "and was not made by pglease demo");
            }
        }
    }

    /** Drops and creates the demo schema with {@code subscriptions} renewals due over the first billing cycle. */
    static void create(DataSource ds, String schema, int subscriptions, Duration cycle) throws SQLException {
        try (Connection c = ds.getConnection()) {
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                s.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
                s.execute("CREATE SCHEMA " + schema);
                s.execute("COMMENT ON SCHEMA " + schema + " IS '" + MARK + "'");
                // The subscription service: one row per customer; "period" is the next billing period to charge.
                // in_flight_* marks a charge request that may have reached the provider (reconciled by a new leader).
                s.execute(
                        "CREATE TABLE " + schema + ".subscriptions ("
                                + "id integer PRIMARY KEY, customer text NOT NULL, amount_cents integer NOT NULL, "
                                + "period integer NOT NULL DEFAULT 1, next_charge_at timestamptz NOT NULL, "
                                + "in_flight_token bigint NULL, in_flight_period integer NULL, last_charged_at timestamptz NULL)");
                // The payment provider's books. Deliberately no unique constraint on (subscription_id, period):
                // a duplicate charge must be possible here, so that counting them proves the fencing worked.
                s.execute("CREATE TABLE " + schema + ".provider_charges ("
                        + "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, subscription_id integer NOT NULL, "
                        + "period integer NOT NULL, amount_cents integer NOT NULL, token bigint NOT NULL, "
                        + "holder text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())");
                s.execute("CREATE TABLE " + schema + ".provider_rejections ("
                        + "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, subscription_id integer NOT NULL, "
                        + "period integer NOT NULL, token bigint NOT NULL, fence bigint NULL, holder text NOT NULL, "
                        + "already_charged boolean NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())");
            }
            ForwardFence.createTable(c, schema + ".provider_fence");
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + schema + ".subscriptions "
                    + "(id, customer, amount_cents, next_charge_at) SELECT i, 'customer-' || lpad(i::text, 4, '0'), "
                    + "500 + (i * 373) % 4500, clock_timestamp() + ((i - 1) * ?::double precision / ?) "
                    + "* interval '1 millisecond' FROM generate_series(1, ?) AS i")) {
                ps.setLong(1, cycle.toMillis());
                ps.setInt(2, subscriptions);
                ps.setInt(3, subscriptions);
                ps.executeUpdate();
            }
            c.commit();
        }
    }

    /**
     * What the chargers may do, and no more: use the schema, read and update the subscriptions (a member of
     * {@code chargerRole}); and {@code <pgleaseSchema>.protect}: the subscriptions table refuses every write that is
     * not in a transaction fenced for {@code lease} with its current token.
     */
    static void grantAndProtect(DataSource ds, String schema, String pgleaseSchema, String lease, String chargerRole)
            throws SQLException {
        try (Connection c = ds.getConnection()) {
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                s.execute("GRANT USAGE ON SCHEMA " + schema + " TO " + chargerRole);
                s.execute("GRANT SELECT, UPDATE ON " + schema + ".subscriptions TO " + chargerRole);
            }
            new ProtectionStatements(pgleaseSchema).protect(c, schema + ".subscriptions", lease);
            c.commit();
        }
    }

    /** The provider's totals: charges, distinct (subscription, period) charged, rejections, would-be duplicates. */
    static long[] totals(Connection c, String schema) throws SQLException {
        try (Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT (SELECT count(*) FROM " + schema + ".provider_charges), "
                        + "(SELECT count(DISTINCT (subscription_id, period)) FROM " + schema + ".provider_charges), "
                        + "(SELECT count(*) FROM " + schema + ".provider_rejections), "
                        + "(SELECT count(*) FROM " + schema + ".provider_rejections WHERE already_charged)")) {
            rs.next();
            return new long[] {rs.getLong(1), rs.getLong(2), rs.getLong(3), rs.getLong(4)};
        }
    }
}
