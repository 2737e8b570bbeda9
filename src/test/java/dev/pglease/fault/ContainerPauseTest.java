package dev.pglease.fault;

import static org.assertj.core.api.Assertions.assertThat;

import com.github.dockerjava.api.DockerClient;
import dev.pglease.docker.DockerEngine;
import dev.pglease.fault.kit.FaultCluster;
import dev.pglease.fault.kit.NodeProcess;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.postgresql.PostgreSQLContainer;
import org.testcontainers.utility.DockerImageName;

/**
 * The Postgres pause scenario with a real container frozen by {@code docker pause} (the cgroup freezer): a
 * Testcontainers PostgreSQL from the project's local image ({@code docker/build-images.sh}), three node processes
 * on the host. Each round freezes the database longer than the lease: the leader can not renew, steps down at its
 * deadline, and after the unpause the cluster recovers under a higher token. Every invariant of the recorded
 * history is checked.
 */
@DockerEngine.Required
class ContainerPauseTest {
    static PostgreSQLContainer pg;

    @BeforeAll
    static void startDatabase() {
        pg = new PostgreSQLContainer(
                        DockerImageName.parse(DockerEngine.postgresImage()).asCompatibleSubstituteFor("postgres"))
                .withCommand("postgres"); // durable: the nodes refuse a server with Testcontainers' default fsync=off
        pg.start();
    }

    @AfterAll
    static void removeDatabase() {
        if (pg != null) {
            pg.stop();
        }
    }

    @Test
    void pausedDatabaseContainerMakesTheLeaderStepDownAndTheClusterRecoversWithAHigherToken() {
        DockerClient docker = DockerClientFactory.instance().client();
        String id = pg.getContainerId();
        FaultCluster.Options o = new FaultCluster.Options()
                .nodes(3)
                .timing(1500, 900, 300)
                .external(pg.getHost(), pg.getFirstMappedPort(), pg.getUsername(), pg.getPassword());
        try (FaultCluster c = FaultCluster.start(o)) {
            for (int i = 0; i < 3; i++) {
                NodeProcess leader = c.awaitLeader(30_000);
                assertThat(leader).as("a leader before round %d", i).isNotNull();
                Long before = leader.leaderToken();
                long pauseMs = 2_500 + 500L * i; // longer than the 1.5 s lease
                c.custom(
                        FaultKind.CONTAINER_PAUSE,
                        "container " + id.substring(0, 12),
                        () -> docker.pauseContainerCmd(id).exec(),
                        pauseMs,
                        () -> docker.unpauseContainerCmd(id).exec());
                assertThat(c.awaitNewLeader(before, 30_000))
                        .as("round %d: a grant above token %d after the unpause", i, before)
                        .isPositive();
                c.pause(leader, 2_500, FaultKind.PAUSE_LEADER);
            }
            CheckReport r = c.finish();
            System.out.println(r.table("container pause"));
            System.out.println(r.render());
            assertThat(r.faultsByKind().get(FaultKind.CONTAINER_PAUSE)).isEqualTo(3);
            assertThat(r.violations()).as(r.render()).isEmpty();
        }
    }
}
