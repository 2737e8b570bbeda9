package dev.pglease.spring;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pglease.GroupListener;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseGroup;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Configuration;

/**
 * {@code /actuator/leases} over real HTTP: an application with Spring Boot's embedded web server and Actuator on a
 * random port, logging in as a member of the candidate role only, as a least-privilege application does.
 */
class LeasesEndpointHttpTest {

    private static final AtomicInteger USERS = new AtomicInteger();
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();

    /** An application as Spring Boot builds one: every auto-configuration on the classpath. */
    @Configuration(proxyBeanMethods = false)
    @EnableAutoConfiguration
    static class Application {}

    @Test
    void getListsRoleTokenRemainingAndLeaderAndOperationsAreOffByDefault() throws Exception {
        String schema = TestDatabase.freshSchema();
        try (ConfigurableApplicationContext app = start(schema)) {
            long token = app.getBean(LeaderElection.class)
                    .awaitLeadership(Duration.ofSeconds(10))
                    .orElseThrow()
                    .token();
            Response get = get(app);
            assertThat(get.status()).isEqualTo(200);
            JsonNode lease = get.json().path("leases").path(0);
            assertThat(lease.path("lease").asText()).isEqualTo("http");
            assertThat(lease.path("role").asText()).isEqualTo("leader");
            assertThat(lease.path("token").asLong()).isEqualTo(token);
            assertThat(lease.path("remaining_ms").asLong()).isPositive();
            assertThat(lease.path("leader").asText())
                    .isEqualTo(app.getBean(PgLease.class).holderId());
            assertThat(get.json().path("operations_enabled").asBoolean()).isFalse();

            Response release = post(app, "{\"action\": \"release\"}");
            assertThat(release.status()).isEqualTo(403);
            assertThat(release.json().path("error").asText()).contains("pglease.actuator.operations-enabled=true");
            assertThat(app.getBean(LeaderElection.class)
                            .leadership()
                            .orElseThrow()
                            .token())
                    .as("still leading with the same grant")
                    .isEqualTo(token);
        }
    }

    @Test
    void releaseWorksWithTheCandidateRoleAndHandoffWithoutAnOperatorLoginIsRefusedNamingRoleAndProperty()
            throws Exception {
        String schema = TestDatabase.freshSchema();
        try (ConfigurableApplicationContext app = start(schema, "pglease.actuator.operations-enabled=true");
                PgLease standby = standby(schema)) {
            LeaderElection election = app.getBean(LeaderElection.class);
            long token = election.awaitLeadership(Duration.ofSeconds(10))
                    .orElseThrow()
                    .token();
            try (var standbyElector = standby.elector("http", NO_CALLBACKS)) {
                Response unknown = post(app, "{\"action\": \"explode\"}");
                assertThat(unknown.status()).isEqualTo(400);
                assertThat(unknown.json().path("error").asText()).contains("explode", "release", "handoff");

                Response handoff = post(app, "{\"action\": \"handoff\"}");
                assertThat(handoff.status()).isEqualTo(403);
                assertThat(handoff.json().path("error").asText())
                        .contains(
                                schema + "_operator",
                                "pglease.actuator.operator.username",
                                "pglease.actuator.operator.password");
                assertThat(election.leadership().orElseThrow().token())
                        .as("the refused handoff changed nothing")
                        .isEqualTo(token);

                Response release = post(app, "{\"action\": \"release\"}");
                assertThat(release.status()).isEqualTo(200);
                assertThat(release.json().path("released").asBoolean()).isTrue();
                Leadership taken =
                        standbyElector.awaitLeadership(Duration.ofSeconds(5)).orElseThrow();
                assertThat(taken.token())
                        .as("the standby took over with a newer token")
                        .isGreaterThan(token);
                assertThat(get(app).json().path("leases").path(0).path("role").asText())
                        .isEqualTo("standby");
            }
        }
    }

    @Test
    void handoffRunsAsTheConfiguredOperatorLogin() throws Exception {
        String schema = TestDatabase.freshSchema();
        String operator = login(schema + "_operator");
        try (ConfigurableApplicationContext app = start(
                        schema,
                        "pglease.actuator.operations-enabled=true",
                        "pglease.actuator.operator.username=" + operator,
                        "pglease.actuator.operator.password=" + operator);
                PgLease standby = standby(schema)) {
            LeaderElection election = app.getBean(LeaderElection.class);
            long token = election.awaitLeadership(Duration.ofSeconds(10))
                    .orElseThrow()
                    .token();
            assertThat(get(app).json().path("handoff_enabled").asBoolean()).isTrue();
            try (var standbyElector = standby.elector("http", NO_CALLBACKS)) {
                String prefix =
                        standby.holderId().substring(0, standby.holderId().lastIndexOf('/') + 1);
                Response handoff = post(app, "{\"action\": \"handoff\", \"to\": \"" + prefix + "\"}");
                assertThat(handoff.status()).as(handoff.body()).isEqualTo(200);
                assertThat(handoff.json().path("handed_off").asBoolean()).isTrue();
                assertThat(handoff.json().path("previous_holder").asText())
                        .isEqualTo(app.getBean(PgLease.class).holderId());
                assertThat(handoff.json().path("previous_token").asLong()).isEqualTo(token);
                Leadership taken =
                        standbyElector.awaitLeadership(Duration.ofSeconds(5)).orElseThrow();
                assertThat(taken.token())
                        .isGreaterThan(handoff.json().path("token").asLong());
                assertThat(new org.springframework.jdbc.core.JdbcTemplate(TestDatabase.dataSource())
                                .queryForObject(
                                        "SELECT changed_by FROM " + schema
                                                + ".lease_events WHERE name = 'http' AND kind = " + "'handed_off'",
                                        String.class))
                        .as("the operator login made the change")
                        .isEqualTo(operator);
            }
        }
    }

    @Test
    void theApplicationsGroupIsShownWithItsMembersAndShardOwnersAndAShardIsHandedOffAsTheOperator() throws Exception {
        String schema = TestDatabase.freshSchema();
        String operator = login(schema + "_operator");
        try (ConfigurableApplicationContext app = start(
                        schema,
                        "pglease.group.name=orders",
                        "pglease.group.shards=4",
                        "pglease.actuator.operations-enabled=true",
                        "pglease.actuator.operator.username=" + operator,
                        "pglease.actuator.operator.password=" + operator);
                PgLease other = standby(schema)) {
            GroupMembership membership = app.getBean(GroupMembership.class);
            await(() -> membership.ownedShards().size() == 4);
            try (LeaseGroup otherMember = other.group("orders", 4, NO_SHARD_CALLBACKS)) {
                await(() -> membership.ownedShards().size() == 2
                        && otherMember.ownedShards().size() == 2);

                JsonNode group = get(app).json().path("groups").path(0);
                assertThat(group.path("group").asText()).isEqualTo("orders");
                assertThat(group.path("shards").asInt()).isEqualTo(4);
                assertThat(group.path("shards_owned").asInt()).isEqualTo(2);
                assertThat(group.path("owned_shards").size()).isEqualTo(2);
                assertThat(group.path("members").size()).isEqualTo(2);
                assertThat(group.path("members").path(0).path("live").asBoolean())
                        .isTrue();

                Response detail = get(app, "/orders");
                assertThat(detail.status()).as(detail.body()).isEqualTo(200);
                assertThat(detail.json().path("live_members").asInt()).isEqualTo(2);
                JsonNode owners = detail.json().path("shard_owners");
                assertThat(owners.size()).isEqualTo(4);
                int shard = membership.ownedShards().first();
                assertThat(owners.path(shard).path("owner").asText())
                        .isEqualTo(app.getBean(PgLease.class).holderId());
                assertThat(get(app, "/no-such-group").status()).isEqualTo(404);

                Response handoff = post(
                        app,
                        "{\"action\": \"handoff\", \"group\": \"orders\", \"shard\": " + shard + ", \"to\": \""
                                + other.holderId() + "\"}");
                assertThat(handoff.status()).as(handoff.body()).isEqualTo(200);
                assertThat(handoff.json().path("handed_off").asBoolean()).isTrue();
                assertThat(handoff.json().path("lease").asText()).isEqualTo("orders/" + shard);
                assertThat(handoff.json().path("previous_holder").asText())
                        .isEqualTo(app.getBean(PgLease.class).holderId());
                await(() -> otherMember.ownedShards().contains(shard));
                await(() -> membership.ownedShards().size() == 2);

                Response refused = post(app, "{\"action\": \"handoff\", \"group\": \"orders\", \"shard\": 9}");
                assertThat(refused.status()).isEqualTo(400);
                assertThat(refused.json().path("error").asText()).contains("shards 0 to 3, got 9");
            }
        }
    }

    private static void await(java.util.function.BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!condition.getAsBoolean()) {
            assertThat(System.nanoTime() - end).as("timed out").isNegative();
            Thread.sleep(10);
        }
    }

    private static final GroupListener NO_SHARD_CALLBACKS = new GroupListener() {
        @Override
        public void onAssigned(int shard, Leadership leadership) {}

        @Override
        public void onRevoked(int shard, Leadership leadership) {}
    };

    private static final LeaderListener NO_CALLBACKS = new LeaderListener() {
        @Override
        public void onElected(Leadership leadership) {}

        @Override
        public void onRevoked(Leadership leadership) {}
    };

    private static ConfigurableApplicationContext start(String schema, String... properties) {
        String candidate = login(schema + "_candidate");
        List<String> args = new ArrayList<>(List.of(
                "--server.port=0",
                "--spring.datasource.url=" + url(),
                "--spring.datasource.username=" + candidate,
                "--spring.datasource.password=" + candidate,
                "--pglease.schema=" + schema,
                "--pglease.election.lease-name=http",
                "--pglease.lease-duration=2s",
                "--pglease.renew-deadline=1500ms",
                "--pglease.retry-period=500ms",
                "--management.endpoints.web.exposure.include=health,leases",
                "--spring.flyway.enabled=false",
                "--spring.main.banner-mode=off"));
        for (String p : properties) {
            args.add("--" + p);
        }
        return new SpringApplicationBuilder(Application.class)
                .web(WebApplicationType.SERVLET)
                .run(args.toArray(String[]::new));
    }

    private static PgLease standby(String schema) {
        return PgLease.create(
                TestDatabase.dataSource(),
                LeaseConfig.builder()
                        .schema(schema)
                        .leaseDuration(Duration.ofSeconds(2))
                        .renewDeadline(Duration.ofMillis(1500))
                        .retryPeriod(Duration.ofMillis(500))
                        .holderLabel("standby")
                        .build());
    }

    private static String login(String role) {
        String name = "http_" + ProcessHandle.current().pid() + "_" + USERS.incrementAndGet();
        TestDatabase.execute("CREATE ROLE " + name + " LOGIN PASSWORD '" + name + "' IN ROLE " + role);
        return name;
    }

    private static String url() {
        return TestDatabase.jdbcUrl()
                .replaceAll("([?&])(user|password)=[^&]*", "$1")
                .replaceAll("[?&]+$", "")
                .replaceAll("&&+", "&")
                .replace("?&", "?");
    }

    record Response(int status, String body) {
        JsonNode json() throws Exception {
            return JSON.readTree(body);
        }
    }

    private static URI uri(ConfigurableApplicationContext app) {
        return URI.create(
                "http://localhost:" + app.getEnvironment().getProperty("local.server.port") + "/actuator/leases");
    }

    private static Response get(ConfigurableApplicationContext app) throws Exception {
        return get(app, "");
    }

    private static Response get(ConfigurableApplicationContext app, String path) throws Exception {
        HttpResponse<String> r = HTTP.send(
                HttpRequest.newBuilder(URI.create(uri(app) + path))
                        .timeout(Duration.ofSeconds(30))
                        .GET()
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        return new Response(r.statusCode(), r.body());
    }

    private static Response post(ConfigurableApplicationContext app, String json) throws Exception {
        HttpResponse<String> r = HTTP.send(
                HttpRequest.newBuilder(uri(app))
                        .timeout(Duration.ofSeconds(30))
                        .header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString(json))
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        return new Response(r.statusCode(), r.body());
    }
}
