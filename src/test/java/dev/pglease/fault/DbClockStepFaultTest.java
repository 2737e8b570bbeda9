package dev.pglease.fault;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Required;
import dev.pglease.fault.kit.FakeTime;
import dev.pglease.fault.kit.FaultCluster;
import dev.pglease.fault.kit.PgServer;
import org.junit.jupiter.api.Test;

/**
 * The database server's clock stepped forward past every lease and back, and back then forward, under three
 * pglease nodes writing through a fence: the checker reads every row on the clock it was written with, and the
 * history keeps every invariant.
 */
class DbClockStepFaultTest {

    @Test
    void steppingTheDatabaseClockBothWaysKeepsEveryInvariant() {
        Required.assume(PgServer.available(), "system PostgreSQL 15 binaries usable through runuser");
        Required.assume(FakeTime.available(), "libfaketime (apt-get install faketime)");
        try (FaultCluster c = FaultCluster.start(new FaultCluster.Options().nodes(3))) {
            assertThat(c.awaitLeader(60_000)).as("a leader at start").isNotNull();
            assertThat(c.canStepDbClock()).isTrue();
            long lease = c.checkerConfig().leaseDurationMs();
            c.dbClockStep(3 * lease, lease);
            c.awaitLeader(10_000);
            c.dbClockStep(-3 * lease, 2 * lease);
            c.awaitLeader(10_000);
            PgServer.sleep(lease);
            CheckReport r = c.finish();
            System.out.println(r.render());
            assertThat(c.history().clockSteps())
                    .as("two faults, each a step and its return")
                    .hasSize(4);
            assertThat(c.history().clockSteps())
                    .extracting(DbClock.Step::deltaMicros)
                    .containsExactly(3000 * lease, -3000 * lease, -3000 * lease, 3000 * lease);
            assertThat(c.history().accepts()).as("fenced writes went on").isNotEmpty();
            assertThat(r.violations()).as(r.render()).isEmpty();
            assertThat(r.lostAckedAcquires()).isZero();
        }
    }
}
