package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.ForwardFence;
import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import java.sql.Connection;
import java.time.Duration;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Forward fences can not be pushed out of reach: a candidate can not move the schema's fence of a resource above
 * every token ever granted (which would refuse every honest writer of that resource for ever), and a fence table
 * made with {@link ForwardFence#createTable} only moves forward for any writer that may update it.
 */
@Tag("security")
class FenceBoundsTest {

    private static HostileSchema h;

    @BeforeAll
    static void setUp() {
        h = HostileSchema.create();
    }

    @Test
    void aCandidateCanNotPushTheSchemasFenceAboveEveryTokenEverGranted() throws Exception {
        try (PgLease b = PgLease.create(
                h.as(h.candB),
                LeaseConfig.builder()
                        .schema(h.schema)
                        .holderLabel("b")
                        .leaseDuration(Duration.ofSeconds(30))
                        .renewDeadline(Duration.ofSeconds(20))
                        .build())) {
            b.tryLock("fence-bound", Duration.ofSeconds(30)).orElseThrow();
            long max = Long.MAX_VALUE;
            try (Attempt a = new Attempt(h, h.candB)) {
                a.run("SELECT " + h.schema + ".advance_fence('orders', " + max + ")");
                a.run("INSERT INTO " + h.schema + ".fences (resource, token) VALUES ('invoices', " + max + ")");
                a.run("INSERT INTO " + h.schema + ".fences (resource, token) VALUES ('ledger', 1)");
                a.run("UPDATE " + h.schema + ".fences SET token = " + max + " WHERE resource = 'ledger'");
                a.run("SELECT " + h.schema + ".advance_fence('never-granted', 4294967297)");
                try (Connection c = h.as(h.candB).getConnection()) {
                    c.setAutoCommit(false);
                    try {
                        b.fence().advance(c, "reports", max);
                        c.commit();
                        a.log.add("ForwardFence.advance(reports, " + max + ") -> committed");
                    } catch (RuntimeException | java.sql.SQLException e) {
                        c.rollback();
                        a.log.add("ForwardFence.advance(reports, " + max + ") -> " + e.getMessage());
                    }
                }
                String granted = HostileSchema.query(
                        null,
                        "SELECT greatest((SELECT max(token) FROM " + h.schema + ".leases), (SELECT max(token) FROM "
                                + h.schema + ".lease_events))");
                String fences = HostileSchema.query(
                        null,
                        "SELECT string_agg(resource || '=' || token, ', ' ORDER BY" + " resource) FROM " + h.schema
                                + ".fences WHERE token > " + granted);
                assertThat(fences)
                        .as("fences above the highest token ever granted (%s); the attack:\n%s", granted, a)
                        .isNull();
            }
        }
    }

    @Test
    void aWriterThatMayUpdateACustomFenceTableCanNotSetItBack() throws Exception {
        String table = h.schema + "_app.fence";
        HostileSchema.superuser("CREATE SCHEMA " + h.schema + "_app");
        try (Connection owner = dev.pglease.TestDatabase.dataSource().getConnection()) {
            ForwardFence.createTable(owner, table);
        }
        HostileSchema.superuser("GRANT USAGE ON SCHEMA " + h.schema + "_app TO " + h.candB + ", " + h.candA);
        HostileSchema.superuser("GRANT SELECT, INSERT, UPDATE ON " + table + " TO " + h.candB + ", " + h.candA);
        ForwardFence fence = new ForwardFence(table);
        try (Connection c = h.as(h.candA).getConnection()) {
            c.setAutoCommit(false);
            fence.advance(c, "payments", 5);
            c.commit();
        }
        try (Attempt b = new Attempt(h, h.candB)) {
            b.run("UPDATE " + table + " SET token = 1 WHERE resource = 'payments'");
            b.run("UPDATE " + table + " SET token = 0");
            b.run("INSERT INTO " + table + " (resource, token) VALUES ('payments', 0)"
                    + " ON CONFLICT (resource) DO UPDATE SET token = excluded.token");
            b.run("UPDATE " + table + " SET resource = 'payments-old' WHERE resource = 'payments'");
            String now = HostileSchema.query(null, "SELECT string_agg(resource || '=' || token, ', ') FROM " + table);
            assertThat(now)
                    .as("custom fence %s after a writer tried to set it back:\n%s", table, b)
                    .isEqualTo("payments=5");
        }
    }
}
