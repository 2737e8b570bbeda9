package dev.pglease.spring;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import dev.pglease.Elector;
import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.fault.kit.TcpProxy;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.sql.DataSource;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;
import org.springframework.boot.health.contributor.Health;

/**
 * The Spring Boot health indicator reports each state an elector can be in with the status docs/integrations.md
 * gives for it, observed on real electors: a leader and a standby (UP), both cut off from the database by a proxy
 * (DOWN), an election whose thread has stopped (DOWN), and an election stopped by the application (OUT_OF_SERVICE).
 */
class HealthStatusMappingTest {

    private static final Pattern ROW = Pattern.compile("^\\|([^|]*)\\|\\s*`([A-Z_]+)`\\s*\\|\\s*$");
    private static final Pattern STATE = Pattern.compile("`([A-Z_]+)`");

    private static TcpProxy proxy;
    private static String schema;
    private static DataSource proxied;

    @BeforeAll
    static void proxy() {
        schema = TestDatabase.freshSchema();
        URI target = URI.create(TestDatabase.jdbcUrl().substring("jdbc:".length()));
        proxy = new TcpProxy(target.getHost(), target.getPort() == -1 ? 5432 : target.getPort());
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL(TestDatabase.jdbcUrl().replaceFirst("//[^/]+/", "//127.0.0.1:" + proxy.port() + "/"));
        ds.setConnectTimeout(2);
        ds.setLoginTimeout(2);
        proxied = ds;
    }

    @AfterAll
    static void stop() {
        if (proxy != null) {
            proxy.close();
        }
    }

    private static PgLease create(String label) {
        return PgLease.create(
                proxied,
                LeaseConfig.builder()
                        .schema(schema)
                        .holderLabel(label)
                        .leaseDuration(Duration.ofMillis(2000))
                        .renewDeadline(Duration.ofMillis(1200))
                        .retryPeriod(Duration.ofMillis(300))
                        .build());
    }

    @Test
    void everyElectorStateIsReportedWithTheStatusTheIntegrationsPageGives() throws Exception {
        String lease = "health-" + System.nanoTime();
        Map<Elector.State, String> observed = new EnumMap<>(Elector.State.class);
        try (PgLease a = create("a");
                PgLease b = create("b")) {
            LeaderElection leader = new LeaderElection(a, lease, List::of);
            LeaderElection standby = new LeaderElection(b, lease, List::of);
            leader.start();
            assertThat(leader.awaitLeadership(Duration.ofSeconds(10))).isPresent();
            standby.start();
            await().atMost(10, TimeUnit.SECONDS)
                    .until(() ->
                            standby.elector().orElseThrow().lastSeenLeader().isPresent());
            observe(leader, observed);
            observe(standby, observed);

            proxy.cut();
            await().atMost(10, TimeUnit.SECONDS)
                    .until(() -> state(leader) == Elector.State.DATABASE_UNREACHABLE
                            && state(standby) == Elector.State.DATABASE_UNREACHABLE);
            observe(leader, observed);
            proxy.restore();
            await().atMost(15, TimeUnit.SECONDS)
                    .until(() -> state(standby) == Elector.State.STANDBY || state(standby) == Elector.State.LEADER);

            Thread election = Thread.getAllStackTraces().keySet().stream()
                    .filter(t -> t.getName().equals("pglease-election " + b.holderId()))
                    .findFirst()
                    .orElseThrow();
            election.interrupt();
            election.join(5000);
            assertThat(state(standby)).isEqualTo(Elector.State.ELECTION_STOPPED);
            observe(standby, observed);

            leader.stop();
            observe(leader, observed);
        }
        assertThat(observed)
                .as("every state an elector can be in was reached")
                .containsOnlyKeys(Elector.State.values());
        assertThat(observed).isEqualTo(documented());
    }

    private static Elector.State state(LeaderElection election) {
        return election.elector().map(Elector::state).orElse(Elector.State.CLOSED);
    }

    private static void observe(LeaderElection election, Map<Elector.State, String> observed) {
        Health health = new PgLeaseHealthIndicator(election).health(true);
        Elector.State state = Elector.State.valueOf((String) health.getDetails().get("state"));
        assertThat(state).isEqualTo(state(election));
        String status = health.getStatus().getCode();
        String before = observed.put(state, status);
        assertThat(before).as("the same state reported the same way each time").isIn(null, status);
    }

    /** The table in docs/integrations.md that maps each elector state to a Spring health status. */
    static Map<Elector.State, String> documented() throws Exception {
        Path root = Paths.get(System.getProperty("pglease.buildDirectory", "target"))
                .toAbsolutePath()
                .getParent();
        List<String> lines = Files.readAllLines(root.resolve("docs/integrations.md"), StandardCharsets.UTF_8);
        Map<Elector.State, String> mapping = new EnumMap<>(Elector.State.class);
        boolean inTable = false;
        for (String line : lines) {
            if (line.startsWith("| `Elector.state()`")) {
                inTable = true;
                continue;
            }
            if (inTable && !line.startsWith("|")) {
                break;
            }
            Matcher row = ROW.matcher(line);
            if (inTable && row.matches()) {
                Matcher states = STATE.matcher(row.group(1));
                while (states.find()) {
                    mapping.put(Elector.State.valueOf(states.group(1)), row.group(2));
                }
            }
        }
        assertThat(mapping)
                .as("docs/integrations.md maps elector states to health statuses")
                .isNotEmpty();
        return mapping;
    }
}
