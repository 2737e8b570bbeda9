package dev.pglease.cli;

import static dev.pglease.cli.NodeProcess.event;
import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.LeaseConfig;
import dev.pglease.TestDatabase;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** The node command as separate processes: the JSON-line contract, fenced writes, SIGTERM releases. */
class NodeCommandTest {

    private static String schema;

    @BeforeAll
    static void migrate() {
        schema = TestDatabase.freshSchema();
    }

    private static String[] args(String lease, String label) {
        return new String[] {
            "--jdbc-url",
            TestDatabase.jdbcUrl(),
            "--schema",
            schema,
            "--lease",
            lease,
            "--lease-duration",
            "1500ms",
            "--renew-deadline",
            "1s",
            "--retry-period",
            "250ms",
            "--work",
            "fenced-counter",
            "--work-interval",
            "20ms",
            "--holder-label",
            label,
            "--trace"
        };
    }

    @Test
    void theTimingOptionsDefaultToTheLibrarysDefaults() {
        NodeCommand node = new NodeCommand();
        new CommandLine(node).parseArgs("--lease", "defaults");
        assertThat(node.leaseDuration).isEqualTo(LeaseConfig.DEFAULT_LEASE_DURATION);
        assertThat(node.renewDeadline).isEqualTo(LeaseConfig.DEFAULT_RENEW_DEADLINE);
        assertThat(node.retryPeriod).isEqualTo(LeaseConfig.DEFAULT_RETRY_PERIOD);
        assertThat(new CommandLine(new NodeCommand()).getUsageMessage())
                .contains(
                        "Lease duration (default: 10s)", "Renew deadline (default: 6s)", "Retry period (default: 2s)");
    }

    @Test
    void aNodeLeadsWritesThroughTheFenceAndReleasesOnSigterm() throws Exception {
        String lease = "node-" + System.nanoTime();
        try (NodeProcess a = NodeProcess.start(args(lease, "node-a"));
                NodeProcess b = NodeProcess.start(args(lease, "node-b"))) {
            Map<String, Object> startedA = a.await(event("started"), 30_000);
            b.await(event("started"), 30_000);
            NodeProcess leader;
            NodeProcess standby;
            Map<String, Object> elected;
            try {
                elected = a.await(event("elected"), 5_000);
                leader = a;
                standby = b;
            } catch (AssertionError notA) {
                elected = b.await(event("elected"), 5_000);
                leader = b;
                standby = a;
            }
            assertThat(elected).containsKeys("lease", "holder", "token", "t");
            assertThat(elected.get("lease")).isEqualTo(lease);
            assertThat(startedA.get("holder").toString()).startsWith("node-a/");
            Map<String, Object> write = leader.await(e -> "write".equals(e.get("event")), 5_000);
            assertThat(write.get("result")).isEqualTo("accepted");
            assertThat(write).containsKeys("token", "start", "deadline", "value");
            leader.await(e -> "renew".equals(e.get("event")) && "ok".equals(e.get("result")), 5_000);

            long before = System.nanoTime();
            assertThat(leader.terminate(10_000)).as("exit code after SIGTERM").isZero();
            assertThat(leader.events()).as(leader.events().toString()).anyMatch(e -> "released".equals(e.get("event")));
            Map<String, Object> next = standby.await(event("elected"), 5_000);
            assertThat(((Number) next.get("token")).longValue())
                    .isGreaterThan(((Number) elected.get("token")).longValue());
            assertThat(System.nanoTime() - before)
                    .as("standby elected well before the lease would expire")
                    .isLessThan(5_000_000_000L);
        }
    }

    @Test
    void aHeldWriteIsAnnouncedWhileItsTransactionHoldsTheLeaseRow() throws Exception {
        String lease = "hold-" + System.nanoTime();
        try (NodeProcess node = NodeProcess.start(withHold(lease))) {
            Map<String, Object> open = node.await(event("open"), 30_000);
            assertThat(open).containsKeys("lease", "holder", "token", "start", "t", "until");
            long t = ((Number) open.get("t")).longValue();
            assertThat(((Number) open.get("until")).longValue() - t).isEqualTo(1_000);
            assertThat(lockedLeaseRows())
                    .as("while the write is open, its transaction locks the lease row")
                    .isOne();
            Map<String, Object> write = node.await(
                    e -> "write".equals(e.get("event")) && open.get("start").equals(e.get("start")), 5_000);
            assertThat(write.get("result")).isEqualTo("accepted");
            assertThat(write.get("token")).isEqualTo(open.get("token"));
            assertThat(((Number) write.get("t")).longValue())
                    .as("committed after the hold")
                    .isGreaterThanOrEqualTo(((Number) open.get("until")).longValue());
        }
    }

    /** A node whose fenced writes stay open 1 s, well inside its 3 s renew deadline. */
    private static String[] withHold(String lease) {
        return new String[] {
            "--jdbc-url",
            TestDatabase.jdbcUrl(),
            "--schema",
            schema,
            "--lease",
            lease,
            "--lease-duration",
            "4s",
            "--renew-deadline",
            "3s",
            "--retry-period",
            "250ms",
            "--work",
            "fenced-counter",
            "--work-interval",
            "20ms",
            "--holder-label",
            "node-h",
            "--write-hold",
            "1s"
        };
    }

    /** Row-level locks on the schema's lease table held by other sessions' open transactions. */
    private static int lockedLeaseRows() throws Exception {
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM pg_locks l JOIN pg_class r ON r.oid = "
                        + "l.relation WHERE r.oid = to_regclass(? || '.leases') AND l.mode = 'RowShareLock' "
                        + "AND l.granted AND l.pid <> pg_backend_pid()")) {
            ps.setString(1, schema);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }
}
