package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import java.time.Duration;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A documented limit, shown as it is: {@code handoff --to PREFIX} matches the holder id, whose label each candidate
 * chooses itself, so it steers a handoff among cooperating candidates but is not an access control. Any candidate
 * login that picks a label starting with the prefix may take the handed-off lease.
 */
@Tag("security")
class HandoffPrefixLimitTest {

    private static final LeaderListener NONE = new LeaderListener() {
        @Override
        public void onElected(Leadership leadership) {}

        @Override
        public void onRevoked(Leadership leadership) {}
    };

    @Test
    void documentedLimitACandidateThatChoosesALabelStartingWithTheHandoffPrefixCanTakeTheHandedOffLease()
            throws Exception {
        HostileSchema h = HostileSchema.create();
        String lease = "handoff-prefix";
        try (Victim a = Victim.start(h, lease, false);
                PgLease b = PgLease.create(
                        h.as(h.candB),
                        LeaseConfig.builder()
                                .schema(h.schema)
                                .holderLabel("billing-eu-impostor")
                                .leaseDuration(Duration.ofSeconds(30))
                                .renewDeadline(Duration.ofSeconds(20))
                                .retryPeriod(Duration.ofMillis(300))
                                .build());
                Elector eb = b.elector(lease, NONE)) {
            String token =
                    HostileSchema.query(h.operator, "SELECT " + h.schema + ".handoff('" + lease + "', 'billing-eu')");
            assertThat(token).as("the operator's handoff to prefix billing-eu").isNotNull();
            Leadership taken = eb.awaitLeadership(Duration.ofSeconds(10)).orElse(null);
            assertThat(taken)
                    .as("a candidate that labelled itself billing-eu-... takes the lease handed to billing-eu")
                    .isNotNull();
            assertThat(taken.holder()).startsWith("billing-eu-impostor/");
        }
    }
}
