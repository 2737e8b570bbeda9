package dev.pglease.cli;

import static dev.pglease.cli.NodeProcess.event;
import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.TestDatabase;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The node command as separate processes: the JSON-line contract, fenced writes, SIGTERM releases. */
class NodeCommandTest {

    private static String schema;

    @BeforeAll
    static void migrate() {
        schema = TestDatabase.freshSchema();
    }

    private static String[] args(String lease, String label) {
        return new String[] {"--jdbc-url", TestDatabase.jdbcUrl(), "--schema", schema, "--lease", lease,
                "--lease-duration", "1500ms", "--renew-deadline", "1s", "--retry-period", "250ms",
                "--work", "fenced-counter", "--work-interval", "20ms", "--holder-label", label, "--trace"};
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
            assertThat(((Number) next.get("token")).longValue()).isGreaterThan(((Number) elected.get("token")).longValue());
            assertThat(System.nanoTime() - before).as("standby elected well before the lease would expire")
                    .isLessThan(5_000_000_000L);
        }
    }
}
