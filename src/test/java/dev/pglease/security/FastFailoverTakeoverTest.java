package dev.pglease.security;

import static dev.pglease.testkit.Lane.PGBOUNCER_TRANSACTION;

import dev.pglease.testkit.NotInLane;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The crash-takeover path as an attack: a login that is not the holder takes the lease's advisory lock, registers
 * the holder's live grant for crash takeover with the holder and token it read from the table, and then a candidate
 * takes the lease over with the next token. A holder whose session is alive must never lose its lease this way, in
 * plain mode (never registered by its holder) or in fast-failover mode.
 */
@Tag("security")
@NotInLane(
        value = PGBOUNCER_TRANSACTION,
        because = "fast failover needs session-level advisory locks held on one server session, which "
                + "transaction pooling does not give: pglease refuses the mode there at start "
                + "(UNSUPPORTED_POOLING)")
class FastFailoverTakeoverTest {

    private static HostileSchema h;

    @BeforeAll
    static void setUp() {
        h = HostileSchema.create();
    }

    static Stream<Arguments> registrars() {
        if (h == null) {
            setUp();
        }
        return h.attackers().stream().map(login -> Arguments.of(h.roleOf(login), login));
    }

    @ParameterizedTest(name = "registered by {0}")
    @MethodSource("registrars")
    void noLoginCanTakeALivePlainModeLeaseThroughTheFastFailoverFunctions(String role, String registrar)
            throws Exception {
        attack("plain-" + role, false, registrar);
    }

    @ParameterizedTest(name = "registered by {0}")
    @MethodSource("registrars")
    void noLoginCanTakeALiveFastFailoverLeaseWhoseHoldersSessionIsAlive(String role, String registrar)
            throws Exception {
        attack("ff-" + role, true, registrar);
    }

    private static void attack(String lease, boolean fastFailover, String registrar) throws Exception {
        try (Victim victim = Victim.start(h, lease, fastFailover)) {
            HostileSchema.Row live = h.row(lease);
            String s = h.schema;
            String key = s + ".fast_failover_key('" + lease + "')";
            StringBuilder log = new StringBuilder();
            try (Attempt reg = new Attempt(h, registrar)) {
                reg.run("SELECT pg_try_advisory_lock(" + key + ")");
                reg.run("SELECT " + s + ".fast_failover_lock('" + lease + "', 0)");
                reg.run("SELECT " + s + ".fast_failover_register('" + lease + "', '" + live.holder() + "', "
                        + live.token() + ")");
                if (registrar.equals(h.candB)) {
                    takeOver(reg, lease);
                }
                reg.run("SELECT pg_advisory_unlock_all()");
                log.append(reg);
            }
            if (!registrar.equals(h.candB)) {
                try (Attempt taker = new Attempt(h, h.candB)) {
                    taker.run("SELECT pg_try_advisory_lock(" + key + ")");
                    takeOver(taker, lease);
                    taker.run("SELECT pg_advisory_unlock_all()");
                    log.append("\n").append(taker);
                }
            }
            victim.awaitRenewals(2);
            victim.assertIntact(
                    "the takeover attack (" + (fastFailover ? "fast-failover" : "plain") + " holder):\n" + log);
        }
    }

    private static void takeOver(Attempt a, String lease) {
        String s = h.schema;
        a.run("UPDATE " + s + ".leases SET holder = 'attacker', token = " + s + ".fast_failover_next_token(token),"
                + " acquired_at = clock_timestamp(), renewed_at = clock_timestamp(),"
                + " expires_at = clock_timestamp() + interval '30 seconds' WHERE name = '" + lease + "'");
        a.run("UPDATE " + s + ".leases SET holder = 'attacker', token = token + 1,"
                + " acquired_at = clock_timestamp(), renewed_at = clock_timestamp(),"
                + " expires_at = clock_timestamp() + interval '30 seconds' WHERE name = '" + lease + "'");
    }
}
