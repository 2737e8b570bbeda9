package dev.pglease.docs;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.cli.Main;
import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * The docs name only what the code has, and the code's public names are all documented somewhere: command-line
 * options (picocli, every command of {@code pglease}), Spring Boot properties ({@code pglease.*}, from the generated
 * configuration metadata), {@code LeaseConfig.Builder} methods (the builder table of docs/configuration.md) and
 * {@code LeaseException.Reason} values. The {@code lease_status} columns are checked against the view by
 * {@code SchemaDocTest}; each reason's entry in docs/troubleshooting.md by {@code TroubleshootingDocTest}.
 */
class DocumentedNamesTest {

    private static final Pattern FLAG = Pattern.compile("(?<![\\w-])--([a-z][a-z0-9]*(?:-[a-z0-9]+)*)(?![\\w-])");

    /** Options of other tools the docs show, with the tool. */
    private static final Map<String, String> OTHER_TOOLS = Map.ofEntries(
            Map.entry("rm", "docker compose run"),
            Map.entry("tail", "docker compose logs"),
            Map.entry("dsn", "the Python campaigner of docs/any-language.md"),
            Map.entry("leader", "patronictl switchover"),
            Map.entry("candidate", "patronictl switchover"),
            Map.entry("force", "patronictl switchover"),
            Map.entry("steal-after", "the fault kit's reference candidate"),
            Map.entry("leader-elect-lease-duration", "Kubernetes components"),
            Map.entry("leader-elect-renew-deadline", "Kubernetes components"),
            Map.entry("leader-elect-retry-period", "Kubernetes components"));

    private static final Pattern PROPERTY =
            Pattern.compile("(?<![\\w.])pglease\\.([a-z][a-z0-9-]*(?:\\.[a-z][a-z0-9-]*)*)(?![\\w(])");
    private static final Pattern SHORTHAND = Pattern.compile("`\\.([a-z][a-z0-9-]*)`");

    @Test
    void everyDocumentedCommandLineOptionExistsAndEveryVisibleOneIsDocumented() {
        Map<String, Boolean> options = new TreeMap<>(); // option -> visible anywhere
        collect(Main.commandLine().getCommandSpec(), false, options);
        Map<String, Set<String>> documented = new TreeMap<>();
        for (Docs.Page page : Docs.pages()) {
            for (int i = 0; i < page.lines().size(); i++) {
                String line = page.lines().get(i);
                if (line.contains("-->") || line.contains("<!--")) {
                    continue; // diagram arrows and HTML comments
                }
                Matcher m = FLAG.matcher(line);
                while (m.find()) {
                    documented.computeIfAbsent(m.group(1), k -> new TreeSet<>()).add(page.name() + ":" + (i + 1));
                }
            }
        }
        Map<String, Set<String>> unknown = new TreeMap<>(documented);
        unknown.keySet().removeIf(flag -> options.containsKey(flag) || OTHER_TOOLS.containsKey(flag));
        assertThat(unknown)
                .as("options the docs show that no pglease command has (a tool of another project? add it to"
                        + " OTHER_TOOLS with the tool)")
                .isEmpty();
        Set<String> undocumented = options.entrySet().stream()
                .filter(Map.Entry::getValue)
                .map(Map.Entry::getKey)
                .filter(o -> !documented.containsKey(o))
                .collect(Collectors.toCollection(TreeSet::new));
        assertThat(undocumented)
                .as("visible command-line options no page documents")
                .isEmpty();
    }

    private static void collect(CommandSpec spec, boolean hidden, Map<String, Boolean> options) {
        boolean commandHidden = hidden || spec.usageMessage().hidden();
        for (OptionSpec option : spec.options()) {
            for (String name : option.names()) {
                if (name.startsWith("--")) {
                    options.merge(name.substring(2), !commandHidden && !option.hidden(), Boolean::logicalOr);
                }
            }
        }
        for (CommandLine sub : spec.subcommands().values()) {
            collect(sub.getCommandSpec(), commandHidden, options);
        }
    }

    @Test
    void everyDocumentedSpringPropertyExistsAndEveryOneIsDocumented() throws IOException {
        Set<String> properties = springProperties();
        assertThat(properties).contains("pglease.lease-duration", "pglease.fast-failover");
        Set<String> groups = new TreeSet<>();
        for (String p : properties) {
            for (int dot = p.indexOf('.', "pglease.".length()); dot > 0; dot = p.indexOf('.', dot + 1)) {
                groups.add(p.substring(0, dot));
            }
        }
        Set<String> others = otherPgleaseNames();
        Map<String, Set<String>> unknown = new TreeMap<>();
        Set<String> documented = new TreeSet<>();
        for (Docs.Page page : Docs.pages()) {
            for (String line : page.lines()) {
                Matcher m = PROPERTY.matcher(line);
                while (m.find()) {
                    String name = "pglease." + m.group(1);
                    if (properties.contains(name)) {
                        documented.add(name);
                        Matcher shorthand = SHORTHAND.matcher(line);
                        while (shorthand.find()) {
                            String sibling = name.substring(0, name.lastIndexOf('.') + 1) + shorthand.group(1);
                            if (properties.contains(sibling)) {
                                documented.add(sibling);
                            }
                        }
                    } else if (!groups.contains(name)
                            && !others.contains(m.group(1).split("\\.")[0])) {
                        unknown.computeIfAbsent(name, k -> new TreeSet<>()).add(page.name());
                    }
                }
            }
        }
        assertThat(unknown)
                .as("pglease.* names the docs show that are neither a Spring property nor a schema object or meter")
                .isEmpty();
        Set<String> undocumented = new TreeSet<>(properties);
        undocumented.removeAll(documented);
        assertThat(undocumented).as("Spring properties no page documents").isEmpty();
    }

    /** The pglease.* properties of the configuration metadata the build generates from PgLeaseProperties. */
    static Set<String> springProperties() throws IOException {
        try (InputStream in =
                DocumentedNamesTest.class.getResourceAsStream("/META-INF/spring-configuration-metadata.json")) {
            assertThat(in).as("generated Spring configuration metadata").isNotNull();
            JsonNode root = new ObjectMapper().readTree(in);
            Set<String> names = new TreeSet<>();
            root.get("properties").forEach(p -> names.add(p.get("name").asText()));
            names.removeIf(n -> !n.startsWith("pglease."));
            return names;
        }
    }

    /**
     * First parts of other things the docs write as {@code pglease.<name>}: objects of the schema (tables, views,
     * functions, the notification channel), settings the schema uses, system properties of the test suites, and
     * Micrometer meters.
     */
    private static Set<String> otherPgleaseNames() {
        return new TreeSet<>(List.of(
                // schema objects
                "leases",
                "lease_events",
                "lease_status",
                "fences",
                "terms",
                "protected_tables",
                "operator_marks",
                "fast_failover_sessions",
                "acquire",
                "renew_all",
                "renew",
                "release",
                "fence",
                "status",
                "protect",
                "unprotect",
                "force_release",
                "handoff",
                "advance_fence",
                "token_text",
                "token_term",
                "token_counter",
                "current_term",
                "schema_version",
                "fast_failover_key",
                "fast_failover_lock",
                "fast_failover_register",
                "fast_failover_unregister",
                "fast_failover_take_over",
                "lock_extend",
                "lock_unlock",
                "next_token",
                "check_name",
                "term_sources",
                "fenced_counter",
                "fenced_counter_log",
                "kit_lease_audit",
                "event_kind",
                "fenced_",
                // lease groups (docs/groups.md)
                "group_members",
                "group_shards",
                "lease_groups",
                "group_state",
                "group_join",
                "group_leave",
                "group_renew",
                // system properties of the test suites (-Dpglease.fault.seed=...)
                "fault",
                "ha",
                "targets",
                "bench",
                "test",
                "starvation",
                // Micrometer meters (PgLeaseMetrics)
                "leader",
                "token",
                "renew",
                "stepdowns",
                "acquire",
                "releases",
                "database"));
    }

    @Test
    void theBuilderTableListsExactlyThePublicBuilderMethods() {
        Set<String> methods = Arrays.stream(LeaseConfig.Builder.class.getDeclaredMethods())
                .filter(m -> Modifier.isPublic(m.getModifiers()) && !m.getName().equals("build"))
                .map(Method::getName)
                .collect(Collectors.toCollection(TreeSet::new));
        Docs.Page page = Docs.page("docs/configuration.md");
        String table = page.text()
                .substring(
                        page.text().indexOf("<!-- builder:begin -->"),
                        page.text().indexOf("<!-- builder:end -->"));
        Set<String> rows = Pattern.compile("(?m)^\\| `([a-zA-Z]+)` \\|")
                .matcher(table)
                .results()
                .map(r -> r.group(1))
                .collect(Collectors.toCollection(TreeSet::new));
        assertThat(rows).as("the builder table of docs/configuration.md").isEqualTo(methods);
    }

    @Test
    void everyReasonTheDocsNameExists() {
        Set<String> reasons =
                Arrays.stream(LeaseException.Reason.values()).map(Enum::name).collect(Collectors.toSet());
        Pattern named = Pattern.compile("Reason\\.([A-Z_]+)|LeaseException[^.|]{0,40}?`([A-Z][A-Z_]+)`");
        Map<String, List<String>> unknown = new LinkedHashMap<>();
        for (Docs.Page page : Docs.pages()) {
            Matcher m = named.matcher(page.text());
            while (m.find()) {
                String reason = m.group(1) != null ? m.group(1) : m.group(2);
                if (!reasons.contains(reason)) {
                    unknown.computeIfAbsent(reason, k -> new java.util.ArrayList<>())
                            .add(page.name());
                }
            }
        }
        assertThat(unknown)
                .as("LeaseException reasons the docs name that the code does not have")
                .isEmpty();
    }
}
