package dev.pglease.demo;

import dev.pglease.ForwardFence;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import javax.sql.DataSource;

/**
 * The demo's own tables, in a schema of their own (default {@code pglease_demo}, dropped and created again on every
 * run): the subscription service's due renewals, and the payment provider's records and fence.
 */
final class DemoSchema {

    private DemoSchema() {}

    /** Drops and creates the demo schema with {@code subscriptions} renewals due over the first billing cycle. */
    static void create(DataSource ds, String schema, int subscriptions, Duration cycle) throws SQLException {
        try (Connection c = ds.getConnection()) {
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                s.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
                s.execute("CREATE SCHEMA " + schema);
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
