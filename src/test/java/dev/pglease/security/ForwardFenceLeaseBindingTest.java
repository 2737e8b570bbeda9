package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A forward fence belongs to one lease: tokens of different leases are not comparable, so a fence may never be
 * pushed past the tokens its own lease granted by naming another lease whose tokens are higher.
 */
@Tag("security")
class ForwardFenceLeaseBindingTest {

    @Test
    void aCandidateCanNotPushAnotherLeasesFencePastItsTokensByNamingItsOwnLease() throws Exception {
        HostileSchema h = HostileSchema.create();
        String s = h.schema;
        long billing;
        try (Connection a = h.as(h.candA).getConnection()) {
            billing = Long.parseLong(value(a, "SELECT token FROM " + s + ".acquire('billing', 'holder-a', 60000)"));
            assertThat(value(a, "SELECT " + s + ".advance_fence('ledger', 'billing', " + billing + ")"))
                    .isEqualTo("t");
        }
        try (Attempt b = new Attempt(h, h.candB)) {
            // a lease of its own, taken and given back until its token passes the billing lease's
            for (int i = 0; i < 3; i++) {
                String token = b.run("SELECT token FROM " + s + ".acquire('mine', 'holder-b', 60000)");
                b.run("SELECT " + s + ".release('mine', 'holder-b', " + token + ")");
            }
            String mine = b.run("SELECT token FROM " + s + ".acquire('mine', 'holder-b', 60000)");
            b.run("SELECT " + s + ".advance_fence('ledger', 'mine', " + mine + ")");

            String fence = HostileSchema.query(
                    null, "SELECT lease || ' ' || token FROM " + s + ".fences WHERE resource = 'ledger'");
            assertThat(fence)
                    .as(
                            "the billing lease's fence 'ledger' after the attack (billing has granted tokens up to %s):\n%s",
                            billing, b)
                    .isEqualTo("billing " + billing);
        }
        try (Connection a = h.as(h.candA).getConnection()) {
            assertThat(value(a, "SELECT " + s + ".advance_fence('ledger', 'billing', " + billing + ")"))
                    .as("the billing holder's write with its current token")
                    .isEqualTo("t");
        }
    }

    private static String value(Connection c, String sql) throws SQLException {
        try (Statement st = c.createStatement();
                ResultSet rs = st.executeQuery(sql)) {
            return rs.next() ? rs.getString(1) : null;
        }
    }
}
