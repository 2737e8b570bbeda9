package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The database, not the client, chooses a grant's token: whatever token a candidate writes when it creates or takes
 * a lease, the stored token is the one the token rule gives (the next counter value in the server's current term,
 * the timeline; the first token of that term when the old token is of an earlier one), or the write is refused.
 * On one server that was never promoted the term is 1, so here the rule gives 1 for a new lease and the old token
 * + 1 for a taken one; term changes (a promotion, a pg_upgrade, a reused timeline) are tried with real servers in
 * TermsSurviveUpgradeAndRewindTest.
 */
@Tag("security")
class TokenRuleTest {

    private static final long TERM = 1L << 32;
    private static HostileSchema h;
    private static long timeline; // the current term

    @BeforeAll
    static void setUp() throws Exception {
        h = HostileSchema.create();
        timeline = Long.parseLong(HostileSchema.query(null, "SELECT " + h.schema + ".current_term()"));
    }

    private static long rule(long old) {
        long term = (old >> 32) + 1;
        return term < timeline ? (timeline - 1) * TERM + 1 : old + 1;
    }

    @Test
    void aCandidateCreatingALeaseCanNotChooseItsToken() throws Exception {
        List<String> wrong = new ArrayList<>();
        int i = 0;
        for (long token : new long[] {0, 2, 5, TERM + 1, timeline * TERM + 1, Long.MAX_VALUE}) {
            String lease = "new-" + i++;
            try (Attempt b = new Attempt(h, h.candB)) {
                b.run("INSERT INTO " + h.schema + ".leases (name, holder, token, expires_at) VALUES ('" + lease
                        + "', 'b', " + token + ", clock_timestamp() + interval '30 seconds')");
                check(lease, rule(0), b, wrong);
            }
        }
        assertThat(wrong)
                .as("tokens a candidate chose itself, stored (timeline %d)", timeline)
                .isEmpty();
    }

    @Test
    void aCandidateTakingAnExpiredLeaseCanNotChooseItsToken() throws Exception {
        List<String> wrong = new ArrayList<>();
        int i = 0;
        for (long token : new long[] {1, 3, TERM + 1, timeline * TERM + 1, Long.MAX_VALUE}) {
            String lease = "taken-" + i++;
            try (Attempt a = new Attempt(h, h.candA);
                    Attempt b = new Attempt(h, h.candB)) {
                a.run("SELECT * FROM " + h.schema + ".acquire('" + lease + "', 'a', 50)");
                long old = Long.parseLong(HostileSchema.query(
                        null, "SELECT token FROM " + h.schema + ".leases WHERE name = '" + lease + "'"));
                Awaitility.await()
                        .atMost(Duration.ofSeconds(5))
                        .until(() -> "t"
                                .equals(HostileSchema.query(
                                        null,
                                        "SELECT expires_at <= clock_timestamp() FROM " + h.schema
                                                + ".leases WHERE name = '" + lease + "'")));
                b.run("UPDATE " + h.schema + ".leases SET holder = 'b', token = " + token + ", acquired_at ="
                        + " clock_timestamp(), renewed_at = clock_timestamp(), expires_at = clock_timestamp() + interval"
                        + " '30 seconds' WHERE name = '" + lease + "'");
                check(lease, rule(old), b, wrong);
            }
        }
        assertThat(wrong)
                .as("tokens a candidate chose itself, stored (timeline %d)", timeline)
                .isEmpty();
    }

    private static void check(String lease, long expected, Attempt b, List<String> wrong) throws Exception {
        String stored = HostileSchema.query(
                null, "SELECT token FROM " + h.schema + ".leases WHERE name = '" + lease + "' AND holder = 'b'");
        if (stored != null && Long.parseLong(stored) != expected) {
            wrong.add(lease + ": stored " + stored + ", the rule gives " + expected + " (" + b + ")");
        }
    }
}
