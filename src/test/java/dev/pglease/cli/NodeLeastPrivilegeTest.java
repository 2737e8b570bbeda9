package dev.pglease.cli;

import static dev.pglease.cli.NodeProcess.event;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pglease.security.HostileSchema;
import dev.pglease.testkit.JavaProcess;
import java.nio.charset.StandardCharsets;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The node command with least privilege: the schema's owner sets up the fenced-counter tables once
 * ({@code --setup-workload}: made, granted to the candidate role, protected with the lease), and the nodes run with
 * candidate-only logins; a candidate node before the set-up says what to run instead of failing on a permission.
 */
class NodeLeastPrivilegeTest {

    private static HostileSchema h;
    private static String work;

    record Run(int code, String output) {}

    @BeforeAll
    static void schema() {
        h = HostileSchema.create();
        work = h.schema + "_work";
    }

    private static List<String> args(String login, String lease, String label) {
        return new ArrayList<>(List.of(
                "--jdbc-url",
                h.url(login),
                "--schema",
                h.schema,
                "--lease",
                lease,
                "--work",
                "fenced-counter",
                "--work-schema",
                work,
                "--work-interval",
                "20ms",
                "--holder-label",
                label,
                "--lease-duration",
                "1500ms",
                "--renew-deadline",
                "1s",
                "--retry-period",
                "250ms"));
    }

    private static Run once(List<String> nodeArgs) throws Exception {
        List<String> all = new ArrayList<>(List.of("node"));
        all.addAll(nodeArgs);
        Process p = new ProcessBuilder(JavaProcess.pglease(JavaProcess.SMALL, all.toArray(String[]::new)))
                .redirectErrorStream(true)
                .start();
        try {
            String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(p.waitFor(60, TimeUnit.SECONDS))
                    .as("node exits: " + output)
                    .isTrue();
            return new Run(p.exitValue(), output);
        } finally {
            JavaProcess.kill(p);
        }
    }

    @Test
    void theOwnerSetsUpAndProtectsTheTablesAndCandidateOnlyNodesWriteThroughTheFence() throws Exception {
        String lease = "least-" + System.nanoTime();
        Run before = once(args(h.candA, lease, "early"));
        assertThat(before.code()).as(before.output()).isNotZero();
        assertThat(before.output())
                .contains("do not exist, and this login may not create them")
                .contains("--setup-workload");

        List<String> setup = args(h.owner, lease, "setup");
        setup.add("--setup-workload");
        Run done = once(setup);
        assertThat(done.code()).as(done.output()).isZero();
        @SuppressWarnings("unchecked")
        Map<String, Object> event = new ObjectMapper()
                .readValue(
                        done.output()
                                .lines()
                                .filter(l -> l.startsWith("{"))
                                .findFirst()
                                .orElseThrow(),
                        Map.class);
        assertThat(event)
                .containsEntry("event", "setup")
                .containsEntry("lease", lease)
                .containsEntry("granted_to", h.roles.candidate())
                .containsEntry("protected_with", lease)
                .containsEntry("tables", List.of(work + ".fenced_counter", work + ".fenced_counter_log"));
        assertThat(once(setup).code()).as("the set-up again changes nothing").isZero();
        assertThat(HostileSchema.query(
                        null,
                        "SELECT string_agg(table_name::text || '=' || lease, ',' ORDER BY 1) FROM " + h.schema
                                + ".protected_tables"))
                .isEqualTo(work + ".fenced_counter=" + lease + "," + work + ".fenced_counter_log=" + lease);

        try (NodeProcess a = NodeProcess.start(args(h.candA, lease, "node-a").toArray(String[]::new));
                NodeProcess b = NodeProcess.start(args(h.candB, lease, "node-b").toArray(String[]::new))) {
            a.await(event("started"), 30_000);
            b.await(event("started"), 30_000);
            NodeProcess leader = a;
            try {
                a.await(event("elected"), 5_000);
            } catch (AssertionError notA) {
                b.await(event("elected"), 5_000);
                leader = b;
            }
            Map<String, Object> write = leader.await(event("write"), 10_000);
            assertThat(write).as(write.toString()).containsEntry("result", "accepted");
        }
        SQLException unfenced = catchThrowableOfType(
                () -> HostileSchema.run(
                        h.candA,
                        "INSERT INTO " + work + ".fenced_counter_log (name, token, holder, value) " + "VALUES ('"
                                + lease + "', 1, 'forged', 0)"),
                SQLException.class);
        assertThat((Throwable) unfenced)
                .as("a write outside a fenced transaction")
                .isNotNull();
        assertThat(unfenced.getSQLState()).isEqualTo("PL002");
    }
}
