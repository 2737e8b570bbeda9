package dev.pglease.fault;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Required;
import dev.pglease.fault.kit.FaultCluster;
import dev.pglease.fault.kit.NodeProcess;
import dev.pglease.fault.kit.PgServer;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

@Tag("soak")
class KitSmokeTest {
    @Test
    void smoke() {
        Required.assume(PgServer.available(), "the system PostgreSQL 15 binaries (postgresql-15, run as postgres)");
        try (FaultCluster c =
                FaultCluster.start(new FaultCluster.Options().nodes(3).refNodes())) {
            NodeProcess l = c.awaitLeader(20_000);
            assertThat(l).isNotNull();
            c.pause(l, 2500, FaultKind.PAUSE_LEADER);
            l = c.awaitLeader(5000);
            c.kill(l, FaultKind.KILL_LEADER);
            c.awaitNewLeader(null, 5000);
            c.restart(l);
            c.pgCrash(300);
            c.awaitLeader(10_000);
            c.pgPause(1000);
            l = c.awaitLeader(10_000);
            c.blackhole(l, 2500);
            CheckReport r = c.finish();
            System.out.println(r.render());
            System.out.println(r.table("smoke"));
            assertThat(r.violations()).as(r.render()).isEmpty();
        }
    }
}
