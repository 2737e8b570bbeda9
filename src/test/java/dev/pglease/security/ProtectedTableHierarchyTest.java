package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A protected table refuses every unfenced write, whichever table of its hierarchy the statement names: a hierarchy
 * is protected from its root (a child alone is refused), its children written through the parent or by name, and a
 * partition of a protected partitioned table truncated by name. The lease is held by its owner's login; another service, granted every right on the tables,
 * writes without fencing.
 */
@Tag("security")
class ProtectedTableHierarchyTest {

    private static HostileSchema h;
    private static String app;

    @BeforeAll
    static void setUp() throws Exception {
        h = HostileSchema.create();
        app = h.schema + "_app";
        HostileSchema.superuser("CREATE SCHEMA " + app + " AUTHORIZATION " + h.candA);
        HostileSchema.superuser("GRANT USAGE ON SCHEMA " + app + " TO " + h.candB);
        HostileSchema.run(h.candA, "SELECT token FROM " + h.schema + ".acquire('orders', 'holder-a', 60000)");
    }

    @Test
    void aProtectedInheritanceChildRefusesUnfencedWritesMadeThroughItsParent() throws Exception {
        asOwner("CREATE TABLE " + app + ".ledger (id int, v text)");
        asOwner("CREATE TABLE " + app + ".ledger_2026 () INHERITS (" + app + ".ledger)");
        asOwner("INSERT INTO " + app + ".ledger_2026 VALUES (1, 'original')");
        assertThatThrownBy(() -> protect(app + ".ledger_2026"))
                .as("a child alone can not be protected")
                .hasMessageContaining("protect the root of its hierarchy");
        protect(app + ".ledger");
        try (Attempt b = new Attempt(h, h.candB)) {
            b.run("UPDATE " + app + ".ledger SET v = 'unfenced'");
            b.run("DELETE FROM " + app + ".ledger");
            b.run("UPDATE " + app + ".ledger_2026 SET v = 'unfenced'");
            assertThat(contents(app + ".ledger_2026"))
                    .as("protected table %s.ledger_2026 after unfenced writes through its parent:\n%s", app, b)
                    .isEqualTo("1 original");
        }
    }

    @Test
    void aProtectedPartitionRefusesUnfencedWritesMadeThroughItsPartitionedTable() throws Exception {
        asOwner("CREATE TABLE " + app + ".orders (id int, v text) PARTITION BY RANGE (id)");
        asOwner("CREATE TABLE " + app + ".orders_low PARTITION OF " + app + ".orders FOR VALUES FROM (0) TO (100)");
        asOwner("INSERT INTO " + app + ".orders VALUES (1, 'original')");
        assertThatThrownBy(() -> protect(app + ".orders_low"))
                .as("a partition alone can not be protected")
                .hasMessageContaining("protect the root of its hierarchy");
        protect(app + ".orders");
        try (Attempt b = new Attempt(h, h.candB)) {
            b.run("UPDATE " + app + ".orders SET v = 'unfenced'");
            b.run("INSERT INTO " + app + ".orders VALUES (2, 'unfenced')");
            b.run("INSERT INTO " + app + ".orders_low VALUES (3, 'unfenced')");
            assertThat(contents(app + ".orders_low"))
                    .as("protected partition %s.orders_low after unfenced writes through its parent:\n%s", app, b)
                    .isEqualTo("1 original");
        }
    }

    @Test
    void aPartitionOfAProtectedPartitionedTableCanNotBeTruncated() throws Exception {
        asOwner("CREATE TABLE " + app + ".payments (id int, v text) PARTITION BY RANGE (id)");
        asOwner("CREATE TABLE " + app + ".payments_low PARTITION OF " + app + ".payments"
                + " FOR VALUES FROM (0) TO (100)");
        asOwner("INSERT INTO " + app + ".payments VALUES (1, 'original')");
        protect(app + ".payments");
        try (Attempt b = new Attempt(h, h.candB)) {
            b.run("TRUNCATE " + app + ".payments");
            b.run("TRUNCATE " + app + ".payments_low");
            assertThat(contents(app + ".payments"))
                    .as(
                            "protected partitioned table %s.payments after TRUNCATE of it and of its partition:\n%s",
                            app, b)
                    .isEqualTo("1 original");
        }
    }

    private static void asOwner(String sql) throws Exception {
        HostileSchema.run(h.candA, sql);
    }

    private static void protect(String table) throws Exception {
        asOwner("SELECT " + h.schema + ".protect('" + table + "', 'orders')");
        HostileSchema.superuser("GRANT ALL ON ALL TABLES IN SCHEMA " + app + " TO " + h.candB);
    }

    private static String contents(String table) throws Exception {
        return HostileSchema.query(null, "SELECT string_agg(id || ' ' || v, ', ' ORDER BY id) FROM " + table);
    }
}
