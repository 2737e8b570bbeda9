package dev.pglease.fault;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Required;
import dev.pglease.fault.kit.FaultCluster;
import dev.pglease.fault.kit.PgServer;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The group checker is trusted only because it fails where it must: members of a lease group that ignore
 * revocation (pglease node processes in group mode with the hidden {@code --ignore-deadline}: after
 * {@code onRevoked} they keep writing each shard with its old grant, fenced only by the database) are caught when a
 * join moves shards away from them, and the same join with ordinary members passes.
 */
class GroupNegativeControlsTest {

    @BeforeAll
    static void postgres() {
        Required.assume(PgServer.available(), "the system PostgreSQL 15 binaries (postgresql-15, run as postgres)");
    }

    private static Set<Integer> safetyViolated(CheckReport r) {
        Set<Integer> s = new TreeSet<>(r.countsByInvariant().keySet());
        s.removeAll(Set.of(7, 9)); // liveness depends on the machine's load and is not planted here
        return s;
    }

    /** Two members settle, a third joins and takes its share from them, the group settles again. */
    private static CheckReport joinOfAThirdMember(FaultCluster c) {
        assertThat(c.awaitSettled(-1, 1000, 60_000).settled())
                .as("two members settle")
                .isTrue();
        FaultRecord join = c.join(c.node(2));
        assertThat(c.awaitSettled(join.index(), 1000, 30_000).settled())
                .as("three members settle")
                .isTrue();
        PgServer.sleep(1500); // the members that ignore revocation write the shards they gave up meanwhile
        return c.finish();
    }

    private static FaultCluster.Options threeSlots() {
        return new FaultCluster.Options()
                .nodes(3)
                .group(16, 2)
                .timing(1000, 600, 200)
                .workInterval(100);
    }

    @Test
    void memberThatIgnoresRevocationIsCaughtByInvariantFive() {
        FaultCluster.Options o = threeSlots().nodeArgs(0, "--ignore-deadline").nodeArgs(1, "--ignore-deadline");
        try (FaultCluster c = FaultCluster.start(o)) {
            CheckReport r = joinOfAThirdMember(c);
            System.out.println(r.table(
                    "negative control: group members that ignore revocation (" + FaultCluster.loadAverage() + ")"));
            System.out.println(r.render());
            assertThat(safetyViolated(r)).as(r.render()).containsExactly(5);
            assertThat(r.violations())
                    .as("writes with a grant its member had reported handed over")
                    .anyMatch(v -> v.invariant() == 5 && v.message().contains("reported that grant release"));
        }
    }

    @Test
    @Tag("soak") // the group runs cover joins against ordinary members; the twin runs with -Psoak
    void ordinaryMembersUnderTheSameJoinAreSafe() {
        try (FaultCluster c = FaultCluster.start(threeSlots())) {
            CheckReport r = joinOfAThirdMember(c);
            System.out.println(r.table("twin: ordinary group members under the same join"));
            assertThat(r.violations()).as(r.render()).isEmpty();
            assertThat(r.history().accepts()).isNotEmpty();
        }
    }
}
