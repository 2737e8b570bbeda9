package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.PgLease;
import java.sql.Connection;
import java.time.Duration;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A fence is refused when the database "no longer lists this holder with this token" (STALE_TOKEN), and such a
 * refusal ends the leadership at once, as a refused renewal would. A fence can also be refused for a reason that says
 * nothing about the grant: the connection handed to {@link PgLease#fenceTransaction} logs in as another login than
 * the lease's (an application whose business tables are written by a login of their own). The write must be refused;
 * the holder's valid grant, which the database still lists, must not end, or every such call costs the application
 * a step-down, a new campaign and a new token.
 *
 * <p>On main the refusal of any fence ends the grant: the leader steps down although nothing happened to its lease.
 */
class FenceOnAnotherLoginTest {

    private static HostileSchema h;

    @BeforeAll
    static void setUp() {
        h = HostileSchema.create();
    }

    @Test
    void aFenceRefusedBecauseTheConnectionIsAnotherLoginsDoesNotEndTheHoldersValidGrant() throws Exception {
        try (PgLease pglease = PgLease.create(
                        h.as(h.candA), LeaseConfig.builder().schema(h.schema).build());
                Elector elector = pglease.elector("billing", new LeaderListener() {
                    @Override
                    public void onElected(Leadership leadership) {}

                    @Override
                    public void onRevoked(Leadership leadership) {}
                })) {
            Leadership leadership =
                    elector.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            try (Connection otherLogin = h.as(h.candB).getConnection()) {
                otherLogin.setAutoCommit(false);
                Throwable refused = catchThrowable(() -> pglease.fenceTransaction(otherLogin, leadership));
                otherLogin.rollback();
                assertThat(refused)
                        .as("the fence on another login's connection")
                        .isInstanceOfSatisfying(LeaseException.class, e -> {
                            assertThat(e.reason()).isEqualTo(LeaseException.Reason.INSUFFICIENT_PRIVILEGE);
                            assertThat(e.getMessage()).as("names both logins").contains(h.candA, h.candB);
                        });
            }
            assertThat(h.row("billing").token())
                    .as("the database still lists the holder with its token")
                    .isEqualTo(leadership.token());
            assertThat(leadership.revocationReason())
                    .as("why the holder's grant ended")
                    .isNull();
            assertThat(leadership.isValid()).as("the holder's grant").isTrue();
        }
    }
}
