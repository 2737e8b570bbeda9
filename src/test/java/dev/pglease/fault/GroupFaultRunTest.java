package dev.pglease.fault;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Required;
import dev.pglease.fault.kit.FaultCluster;
import dev.pglease.fault.kit.PgServer;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The short group run of the default build: a lease group of 64 shards over three members (four slots), at the
 * 1 s / 600 ms / 200 ms timings, each member writing every shard it owns through that shard's fence. A member joins,
 * one leaves (SIGTERM), one is killed (kill -9), one paused past its lease, one briefly, one inside a fenced
 * transaction, one suspended, and PostgreSQL crashes: once each, in the order of a fixed seed (replay another with
 * {@code -Dpglease.fault.seed=N}). Then the checker: invariants 1-6 per shard, one owner per shard by the members'
 * own reports (8), every lost member's shards owned elsewhere in time and joins balanced in time (9), every settled
 * state complete and balanced within one (10), and sticky moves (11).
 */
class GroupFaultRunTest {

    static final long SEED = 20261205L;

    static final List<FaultKind> KINDS = List.of(
            FaultKind.MEMBER_JOIN,
            FaultKind.MEMBER_LEAVE,
            FaultKind.KILL_LEADER,
            FaultKind.PAUSE_LEADER,
            FaultKind.PAUSE_NODE,
            FaultKind.STALL_IN_FENCED_TXN,
            FaultKind.SUSPEND_LEADER,
            FaultKind.PG_CRASH);

    @Test
    void membersJoiningLeavingCrashingAndPausingKeepEveryShardAndGroupInvariant() {
        Required.assume(PgServer.available(), "the system PostgreSQL 15 binaries (postgresql-15, run as postgres)");
        String s = System.getProperty("pglease.fault.seed");
        long seed = s == null || s.isBlank() ? SEED : Long.parseLong(s.trim());
        FaultCluster.Options o = new FaultCluster.Options()
                .nodes(4)
                .group(64, 3)
                .timing(1000, 600, 200)
                .workInterval(100)
                .writeHold(20);
        long started = System.currentTimeMillis();
        try (FaultCluster c = FaultCluster.start(o)) {
            GroupRun run = new GroupRun(c, new GroupRun.Plan(seed, KINDS.size() + 4, 10 * 60_000L, KINDS));
            run.inject();
            CheckReport r = c.finish();
            String table = r.table("short group fault run, seed " + seed + " (replay with -Dpglease.fault.seed="
                    + seed + "), " + run.injected() + " faults in " + (System.currentTimeMillis() - started) / 1000
                    + " s\ntiming: " + c.describeTiming() + "\nload: " + FaultCluster.loadAverage()
                    + "\nsettle waits (ms): " + run.settleMs());
            System.out.println(table);
            System.out.println(r.render());
            assertThat(run.notInjected())
                    .as("kinds that could not be injected, with the reason")
                    .isEmpty();
            assertThat(r.faultsByKind().keySet()).as("every kind injected").containsAll(KINDS);
            assertThat(r.violations()).as(table + "\n" + r.render()).isEmpty();
            assertThat(r.lostAckedAcquires()).isZero();
            assertThat(r.groupSummary()).as("settled states were checked").doesNotContain(" 0 settled states");
            assertThat(r.windows().stream().filter(CheckReport.Window::measured).count())
                    .as("measured windows\n" + r.windowTable())
                    .isGreaterThanOrEqualTo(3);
        }
    }
}
