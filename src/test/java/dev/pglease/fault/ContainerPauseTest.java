package dev.pglease.fault;

import static org.assertj.core.api.Assertions.assertThat;

import com.github.dockerjava.api.DockerClient;
import dev.pglease.fault.kit.FaultCluster;
import dev.pglease.fault.kit.NodeProcess;
import org.junit.jupiter.api.Test;
import org.testcontainers.DockerClientFactory;
import org.testcontainers.junit.jupiter.Container;
import org.testcontainers.junit.jupiter.Testcontainers;
import org.testcontainers.postgresql.PostgreSQLContainer;

/**
 * The Postgres pause scenario with a real container frozen by {@code docker pause} (the cgroup freezer), where a
 * Docker engine is present. Without one the whole class is skipped.
 */
@Testcontainers(disabledWithoutDocker = true)
class ContainerPauseTest {
  @Container
  static final PostgreSQLContainer PG = new PostgreSQLContainer("postgres:15-alpine");

  @Test
  void pausedDatabaseContainerKeepsEveryInvariant() {
    DockerClient docker = DockerClientFactory.instance().client();
    String id = PG.getContainerId();
    FaultCluster.Options o = new FaultCluster.Options().nodes(3).timing(1500, 900, 300)
        .external(PG.getHost(), PG.getFirstMappedPort(), PG.getUsername(), PG.getPassword());
    try (FaultCluster c = FaultCluster.start(o)) {
      for (int i = 0; i < 3; i++) {
        NodeProcess leader = c.awaitLeader(30_000);
        assertThat(leader).isNotNull();
        c.custom(FaultKind.CONTAINER_PAUSE, "container " + id.substring(0, 12),
            () -> docker.pauseContainerCmd(id).exec(), 2_500 + 500L * i,
            () -> docker.unpauseContainerCmd(id).exec());
        c.pause(leader, 2_500, FaultKind.PAUSE_LEADER);
      }
      CheckReport r = c.finish();
      System.out.println(r.table("container pause"));
      System.out.println(r.render());
      assertThat(r.violations()).as(r.render()).isEmpty();
    }
  }
}
