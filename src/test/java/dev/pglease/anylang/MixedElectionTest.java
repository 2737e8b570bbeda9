package dev.pglease.anylang;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.Required;
import dev.pglease.fault.CheckReport;
import dev.pglease.fault.FaultKind;
import dev.pglease.fault.FaultRecord;
import dev.pglease.fault.Op;
import dev.pglease.fault.kit.FaultCluster;
import dev.pglease.fault.kit.NodeProcess;
import dev.pglease.fault.kit.PgServer;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * A Java node ({@code pglease node}), a Python campaigner and a psql campaigner in one election, each behind its own
 * proxy of the fault kit, writing the same fenced counter. Each of them is made the leader in turn and then
 * paused past its lease, killed with SIGKILL, or stopped with SIGTERM, so every language meets every fault as the
 * leader. The fault tests' checker judges the whole recorded history (every node's events, the lease rows and the
 * counter's accept log): no invariant may be violated.
 */
class MixedElectionTest {

    /** Round i makes node {@code i % 3} the leader and hits it with the fault of {@code SCHEDULE[i]}. */
    private static final FaultKind[] SCHEDULE = {
        FaultKind.PAUSE_LEADER, FaultKind.KILL_LEADER, FaultKind.STOP_LEADER,
        FaultKind.KILL_LEADER, FaultKind.STOP_LEADER, FaultKind.PAUSE_LEADER,
        FaultKind.STOP_LEADER, FaultKind.PAUSE_LEADER, FaultKind.KILL_LEADER
    };

    private static final long BUDGET_MS = Long.getLong("pglease.anylang.mixedMs", 45_000);

    @Test
    void javaPythonAndPsqlCandidatesShareOneElectionWithoutViolatingAnyInvariant() {
        Required.assume(PgServer.available(), "the system PostgreSQL 15 binaries (postgresql-15, run as postgres)");
        Optional<List<String>> python = Campaigners.python();
        Required.assume(python.isPresent(), Campaigners.PYTHON_REQUIREMENT);
        Optional<List<String>> psql = Campaigners.psql();
        Required.assume(psql.isPresent(), Campaigners.PSQL_REQUIREMENT);
        FaultCluster.Options options =
                new FaultCluster.Options().nodes(3).program(1, python.get()).program(2, psql.get());
        try (FaultCluster c = FaultCluster.start(options)) {
            long lease = c.checkerConfig().leaseDurationMs();
            long start = System.currentTimeMillis();
            List<String> done = new ArrayList<>();
            for (int round = 0; round < SCHEDULE.length && System.currentTimeMillis() - start < BUDGET_MS; round++) {
                NodeProcess target = c.node(round % 3);
                FaultKind kind = SCHEDULE[round];
                assertThat(target.awaitStarted(60_000))
                        .as(target.name() + " runs\n" + target.recentOutput())
                        .isTrue();
                c.awaitHealthyStandby(target, 30_000);
                if (!c.moveLeadershipTo(target, 30_000)) {
                    done.add(target.name() + ": could not be made the leader");
                    continue;
                }
                c.awaitHealthyStandby(target, 30_000);
                FaultRecord f = switch (kind) {
                    case PAUSE_LEADER -> c.pause(target, lease + lease / 2, kind);
                    case KILL_LEADER -> c.kill(target, kind);
                    case STOP_LEADER -> c.stop(target);
                    default -> throw new IllegalStateException(kind.name());
                };
                c.awaitFailover(f);
                if (!target.alive()) {
                    c.restart(target);
                }
                done.add(target.name() + ": " + kind.label() + (f.leaderLoss() ? "" : " (not as the leader)"));
                c.awaitLeader(c.checkerConfig().maxLivenessBoundMs() + 3000);
            }
            CheckReport r = c.finish();
            String report = "rounds: " + done + "\ntiming: " + c.describeTiming() + "\n" + r.render();
            System.out.println(report);

            assertThat(r.violations()).as(report).isEmpty();
            assertThat(r.lostAckedAcquires()).as(report).isZero();
            assertThat(r.measuredShare())
                    .as("share of failovers measured\n" + r.windowTable())
                    .isGreaterThanOrEqualTo(0.9);
            List<Op> ops = r.history().ops();
            for (NodeProcess n : c.nodes()) {
                assertThat(r.history().faults())
                        .as(n.name() + " was hit as the leader\n" + report)
                        .anyMatch(f -> f.target().equals(n.name()) && f.leaderLoss());
                assertThat(ops)
                        .as(n.name() + " was elected\n" + report)
                        .anyMatch(o -> o.node().equals(n.name()) && o.kind() == Op.Kind.ELECTED);
                assertThat(ops)
                        .as(n.name() + " had fenced writes accepted\n" + report)
                        .anyMatch(o -> o.node().equals(n.name()) && o.kind() == Op.Kind.WRITE && o.ok());
            }
        }
    }
}
