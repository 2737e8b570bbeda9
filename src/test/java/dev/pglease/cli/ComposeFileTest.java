package dev.pglease.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;

import dev.pglease.LeaseConfig;
import dev.pglease.internal.tool.Databases;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import picocli.CommandLine;
import picocli.CommandLine.Model.ArgSpec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.ParseResult;

/**
 * docker-compose.yml checked against the CLI without an engine (ComposeWalkthroughIT runs it for real): every
 * command a service runs must parse with the real picocli model of {@code pglease}, every environment variable
 * must be one the CLI reads, the mounted jar must be the one the build produces, and the services must fit together.
 */
class ComposeFileTest {

    private static Map<String, Object> compose;
    private static Map<String, Map<String, Object>> services;

    @BeforeAll
    @SuppressWarnings("unchecked")
    static void load() throws IOException {
        LoaderOptions options = new LoaderOptions();
        options.setAllowDuplicateKeys(false);
        compose = new Yaml(new SafeConstructor(options)).load(Files.readString(Path.of("docker-compose.yml")));
        services = (Map<String, Map<String, Object>>) compose.get("services");
    }

    @SuppressWarnings("unchecked")
    private static List<String> strings(Object value) {
        assertThat(value).isInstanceOf(List.class);
        List<String> out = new ArrayList<>();
        for (Object o : (List<Object>) value) {
            assertThat(o)
                    .as("list items are strings (quote numbers and durations)")
                    .isInstanceOf(String.class);
            out.add((String) o);
        }
        return out;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> map(Object value) {
        assertThat(value).isInstanceOf(Map.class);
        return (Map<String, Object>) value;
    }

    /** Services that run the pglease jar (their entrypoint is java -jar). */
    private static Map<String, Map<String, Object>> cliServices() {
        Map<String, Map<String, Object>> out = new HashMap<>();
        services.forEach((name, service) -> {
            if (service.get("entrypoint") != null
                    && strings(service.get("entrypoint")).contains("-jar")) {
                out.put(name, service);
            }
        });
        return out;
    }

    @Test
    void hasPostgresAndThreeNodesOfTheDemo() {
        assertThat(services).containsKeys("postgres", "node1", "node2", "node3");
        assertThat(cliServices()).containsKeys("node1", "node2", "node3", "migrate", "cli");
        for (Map<String, Object> service : services.values()) {
            if (service.get("depends_on") != null) {
                assertThat(services)
                        .containsKeys(map(service.get("depends_on")).keySet().toArray(String[]::new));
            }
        }
        assertThat(map(services.get("postgres").get("healthcheck"))).containsKey("test");
        assertThat(map(map(services.get("migrate").get("depends_on")).get("postgres")))
                .containsEntry("condition", "service_healthy");
        assertThat(map(map(services.get("setup").get("depends_on")).get("migrate")))
                .as("the workload's tables are set up once the schema is migrated")
                .containsEntry("condition", "service_completed_successfully");
        for (String node : List.of("node1", "node2", "node3", "watch")) {
            assertThat(map(map(services.get(node).get("depends_on")).get("setup")))
                    .containsEntry("condition", "service_completed_successfully");
        }
    }

    @Test
    void everyCommandIsAValidInvocationOfTheCli() {
        Set<String> leases = new HashSet<>();
        Set<String> labels = new HashSet<>();
        Set<String> workSchemas = new HashSet<>();
        Set<String> setups = new HashSet<>();
        for (Map.Entry<String, Map<String, Object>> e : cliServices().entrySet()) {
            List<String> command = strings(e.getValue().get("command"));
            ParseResult parsed = parse(e.getKey(), command);
            assertThat(parsed.hasSubcommand())
                    .as(e.getKey() + " runs a subcommand")
                    .isTrue();
            ParseResult sub = parsed.subcommand();
            assertThat(sub.commandSpec().usageMessage().hidden())
                    .as(e.getKey() + " uses a documented command")
                    .isFalse();
            if (sub.commandSpec().name().equals("node")) {
                leases.add(sub.matchedOptionValue("--lease", ""));
                workSchemas.add(sub.matchedOptionValue("--work-schema", "the pglease schema"));
                if (sub.hasMatchedOption("--setup-workload")) {
                    setups.add(e.getKey());
                    continue;
                }
                labels.add(sub.matchedOptionValue("--holder-label", ""));
                Duration lease = sub.matchedOptionValue("--lease-duration", Duration.ofSeconds(10));
                Duration renew = sub.matchedOptionValue("--renew-deadline", Duration.ofSeconds(6));
                Duration retry = sub.matchedOptionValue("--retry-period", Duration.ofSeconds(2));
                assertThatCode(() -> LeaseConfig.builder()
                                .leaseDuration(lease)
                                .renewDeadline(renew)
                                .retryPeriod(retry)
                                .build())
                        .as(e.getKey() + " lease timings")
                        .doesNotThrowAnyException();
                assertThat(sub.matchedOptionValue("--work", "none")).isIn("none", "fenced-counter");
                Duration hold = sub.matchedOptionValue("--write-hold", Duration.ZERO);
                assertThat(hold)
                        .as(e.getKey() + ": a held write commits before the fence's bound (the validity left "
                                + "at its start, at least the renew deadline minus one retry period) ends it")
                        .isLessThan(renew.minus(retry));
            }
        }
        assertThat(leases).as("all nodes compete for one lease").containsExactly("payments");
        assertThat(labels).as("each node has its own holder label").hasSize(3);
        assertThat(setups).as("one service sets up the workload's tables").containsExactly("setup");
        assertThat(workSchemas)
                .as("the nodes write the tables the set-up made, in a schema of their own (so they can be protected)")
                .containsExactly("app");
        // the operator commands the compose walkthrough (docs/demo.md) runs through `docker compose run --rm cli ...`
        for (List<String> command : List.of(
                List.of("status"),
                List.of("status", "--json"),
                List.of("history", "payments"),
                List.of("watch"),
                List.of("release", "payments"),
                List.of("handoff", "payments", "--to", "node2/"))) {
            parse("cli " + command, command);
        }
        assertThat(strings(services.get("node1").get("command"))).startsWith("node");
        assertThat(strings(services.get("migrate").get("command"))).containsExactly("migrate");
    }

    private static ParseResult parse(String what, List<String> command) {
        try {
            return Main.commandLine().parseArgs(command.toArray(String[]::new));
        } catch (CommandLine.ParameterException ex) {
            throw new AssertionError(
                    what + ": `pglease " + String.join(" ", command) + "` does not parse: " + ex.getMessage(), ex);
        }
    }

    /** The logins docker/compose-init.sql creates: name to password and the roles it is in. */
    private record Login(String password, List<String> roles) {}

    private static Map<String, Login> initLogins() throws IOException {
        String sql = Files.readString(Path.of("docker/compose-init.sql")).replaceAll("(?m)--.*$", "");
        Map<String, Login> logins = new HashMap<>();
        Matcher m = Pattern.compile("CREATE ROLE (\\w+) LOGIN PASSWORD '([^']*)'(?: IN ROLE ([\\w, ]+))?;")
                .matcher(sql);
        while (m.find()) {
            logins.put(
                    m.group(1),
                    new Login(
                            m.group(2),
                            m.group(3) == null ? List.of() : List.of(m.group(3).split(",\\s*"))));
        }
        assertThat(sql)
                .as("no login may create roles or bypass the guards")
                .doesNotContainIgnoringCase("SUPERUSER")
                .doesNotContainIgnoringCase("CREATEROLE")
                .doesNotContainIgnoringCase("BYPASSRLS");
        return logins;
    }

    @Test
    void theEnvironmentIsWhatTheCliReadsAndPointsAtThePostgresService() throws IOException {
        Set<String> read = environmentVariablesReadByTheCli();
        assertThat(read).contains(Databases.URL_VARIABLE);
        Map<String, Object> postgresEnv = map(services.get("postgres").get("environment"));
        for (Map.Entry<String, Map<String, Object>> e : cliServices().entrySet()) {
            Map<String, Object> env = map(e.getValue().get("environment"));
            assertThat(read)
                    .as(e.getKey() + " sets only variables the CLI reads")
                    .containsAll(env.keySet());
            String url = (String) env.get(Databases.URL_VARIABLE);
            assertThat(url).as(e.getKey()).startsWith("jdbc:postgresql://");
            URI uri = URI.create(url.substring("jdbc:".length()));
            assertThat(uri.getHost()).isEqualTo("postgres");
            assertThat(uri.getPort()).isEqualTo(5432);
            assertThat(uri.getPath()).isEqualTo("/" + postgresEnv.get("POSTGRES_DB"));
        }
        assertThat(strings(services.get("postgres").get("volumes")))
                .contains("./docker/compose-init.sql:/docker-entrypoint-initdb.d/10-pglease-logins.sql:ro");
    }

    @Test
    void everyServiceLogsInWithTheLeastItNeedsAndNeverAsTheSuperuser() throws IOException {
        Map<String, Login> logins = initLogins();
        String superuser =
                (String) map(services.get("postgres").get("environment")).get("POSTGRES_USER");
        Map<String, String> roleOf = Map.of(
                "node1", "pglease_candidate",
                "node2", "pglease_candidate",
                "node3", "pglease_candidate",
                "watch", "pglease_observer",
                "cli", "pglease_operator");
        for (Map.Entry<String, Map<String, Object>> e : cliServices().entrySet()) {
            URI uri = URI.create(((String) map(e.getValue().get("environment")).get(Databases.URL_VARIABLE))
                    .substring("jdbc:".length()));
            Map<String, String> query = new HashMap<>();
            for (String pair : uri.getQuery().split("&")) {
                query.put(pair.substring(0, pair.indexOf('=')), pair.substring(pair.indexOf('=') + 1));
            }
            String user = query.get("user");
            assertThat(user).as(e.getKey() + " never logs in as the superuser").isNotEqualTo(superuser);
            assertThat(logins)
                    .as(e.getKey() + ": a login of docker/compose-init.sql")
                    .containsKey(user);
            assertThat(query.get("password"))
                    .as(e.getKey())
                    .isEqualTo(logins.get(user).password());
            if (e.getKey().equals("migrate") || e.getKey().equals("setup")) {
                assertThat(logins.get(user).roles())
                        .as(e.getKey() + ": the owner is in no pglease role")
                        .isEmpty();
            } else {
                assertThat(logins.get(user).roles())
                        .as(e.getKey() + " logs in with a login in one role only")
                        .containsExactly(roleOf.get(e.getKey()));
            }
        }
        assertThat(Files.readString(Path.of("docker/compose-init.sql")))
                .contains("GRANT CREATE ON DATABASE "
                        + map(services.get("postgres").get("environment")).get("POSTGRES_DB") + " TO pglease_owner");
    }

    /** Every {@code ${env:NAME}} default in the CLI's options, over all commands. */
    private static Set<String> environmentVariablesReadByTheCli() {
        Set<String> names = new HashSet<>();
        Pattern env = Pattern.compile("\\$\\{env:([A-Z0-9_]+)}");
        CommandLine cli = Main.commandLine();
        cli.setInterpolateVariables(false);
        collect(cli.getCommandSpec(), env, names);
        return names;
    }

    private static void collect(CommandSpec spec, Pattern env, Set<String> names) {
        for (ArgSpec arg : spec.args()) {
            String raw = arg.defaultValue();
            if (raw != null) {
                Matcher m = env.matcher(raw);
                while (m.find()) {
                    names.add(m.group(1));
                }
            }
        }
        for (CommandLine sub : spec.subcommands().values()) {
            collect(sub.getCommandSpec(), env, names);
        }
    }

    @Test
    void theMountedJarIsTheOneTheBuildProduces() throws IOException {
        String pom = Files.readString(Path.of("pom.xml"));
        Matcher artifact = Pattern.compile("<artifactId>([^<]+)</artifactId>\\s*<version>([^<]+)</version>")
                .matcher(pom);
        assertThat(artifact.find()).isTrue();
        String jar = "./target/" + artifact.group(1) + "-" + artifact.group(2) + "-all.jar";
        assertThat(pom).contains("<shadedClassifierName>all</shadedClassifierName>");
        for (Map.Entry<String, Map<String, Object>> e : cliServices().entrySet()) {
            List<String> entrypoint = strings(e.getValue().get("entrypoint"));
            String inContainer = entrypoint.get(entrypoint.indexOf("-jar") + 1);
            assertThat(strings(e.getValue().get("volumes"))).as(e.getKey()).contains(jar + ":" + inContainer + ":ro");
            assertThat(entrypoint.get(0)).isEqualTo("java");
        }
    }

    @Test
    void upstreamImagesArePinnedAndTheLocalOnesCanReplaceThem() {
        Pattern image = Pattern.compile("\\$\\{(PGLEASE_[A-Z_]+_IMAGE):-([a-z0-9./-]+):([^}]+)}");
        Set<String> variables = new HashSet<>();
        for (Map.Entry<String, Map<String, Object>> e : services.entrySet()) {
            Matcher m = image.matcher(String.valueOf(e.getValue().get("image")));
            assertThat(m.matches())
                    .as(e.getKey() + ": image is ${PGLEASE_..._IMAGE:-upstream:tag}")
                    .isTrue();
            assertThat(m.group(3))
                    .as(e.getKey() + ": the upstream tag names a specific version")
                    .matches("\\d+\\.\\d+.*");
            variables.add(m.group(1));
        }
        assertThat(variables).containsExactlyInAnyOrder("PGLEASE_POSTGRES_IMAGE", "PGLEASE_JRE_IMAGE");
    }
}
