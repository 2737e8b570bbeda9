package dev.pglease.ha;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * pglease on a PostgreSQL cluster run by pg_auto_failover, asynchronous replication, primary killed: the manager
 * detects the loss and promotes the secondary to a new timeline; the candidates follow the multi-host URL to it and
 * elect a leader in the new term. Nothing but an unreplicated grant may be lost; no token is granted twice.
 */
@Tag("ha-full") // runs with -Pha: on a loaded 2-core machine the cluster's boot alone can exceed two minutes
class AutoFailoverTest {

    @BeforeAll
    static void manager() {
        boolean ci = "true".equals(System.getenv("CI"));
        if (ci) {
            assertThat(AutoFailoverCluster.available())
                    .as("CI installs postgresql-15 and postgresql-15-auto-failover (.ci/run)")
                    .isTrue();
        }
        assumeTrue(
                AutoFailoverCluster.available(),
                "pg_autoctl (postgresql-15-auto-failover) or the PostgreSQL 15 binaries are not installed here");
    }

    @Test
    void asynchronousPrimaryKilledANewLeaderInTheNewTermAndNoTokenTwice() {
        HaRun.run(HaCluster.Manager.PG_AUTO_FAILOVER, false, HaRun.Fault.KILL)
                .assertNewLeaderInNewTermAndNoTokenTwice();
    }
}
