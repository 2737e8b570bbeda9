package dev.pglease.ha;

import dev.pglease.Required;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * pglease on a PostgreSQL cluster run by Patroni (etcd as its store), asynchronous replication, primary killed:
 * Patroni's leader key expires, the replica takes it and promotes itself to a new timeline; the candidates follow
 * the multi-host URL to it and elect a leader in the new term. Nothing but an unreplicated grant may be lost; no
 * token is granted twice.
 */
class PatroniTest {

    @BeforeAll
    static void manager() {
        Required.assume(PatroniCluster.available(), HaCluster.Manager.PATRONI.needs);
    }

    @Test
    void asynchronousPrimaryKilledANewLeaderInTheNewTermAndNoTokenTwice() {
        HaRun.run(HaCluster.Manager.PATRONI, false, HaRun.Fault.KILL).assertNewLeaderInNewTermAndNoTokenTwice();
    }
}
