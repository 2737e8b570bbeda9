package dev.pglease.spring;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * docs/integrations.md shows exactly the code the tests compile and run: every {@code // tag::name[]} region of
 * the integration test sources appears in it verbatim (indentation removed), every Java block of the page is
 * one of those regions, and its properties block is the file the Spring snippet test starts a context with.
 */
class IntegrationsDocTest {

    private static final Pattern TAG = Pattern.compile("^\\s*// tag::([a-z0-9-]+)\\[\\]\\s*$");
    private static final Pattern END = Pattern.compile("^\\s*// end::([a-z0-9-]+)\\[\\]\\s*$");
    private static final Pattern FENCE = Pattern.compile("```(java|properties)\\n(.*?)\\n```", Pattern.DOTALL);

    @Test
    void theDocumentShowsTheTestedSnippetsVerbatim() throws IOException {
        Path root = projectRoot();
        String doc = Files.readString(root.resolve("docs/integrations.md"), StandardCharsets.UTF_8);
        Map<String, String> regions = regions(root);
        assertThat(regions)
                .containsKeys(
                        "micrometer",
                        "health",
                        "shedlock-bean",
                        "shedlock-task",
                        "lease-lock",
                        "spring-listener",
                        "spring-leader-only");

        List<String> javaBlocks = new ArrayList<>();
        List<String> propertiesBlocks = new ArrayList<>();
        Matcher m = FENCE.matcher(doc);
        while (m.find()) {
            (m.group(1).equals("java") ? javaBlocks : propertiesBlocks).add(m.group(2));
        }
        regions.forEach((name, code) -> assertThat(javaBlocks)
                .as("docs/integrations.md shows region " + name)
                .contains(code));
        assertThat(regions.values())
                .as("every Java block of docs/integrations.md is tested code")
                .containsAll(javaBlocks);

        String properties = Files.readString(
                        root.resolve("src/test/resources/" + SpringSnippetTest.PROPERTIES), StandardCharsets.UTF_8)
                .strip();
        assertThat(propertiesBlocks).containsExactly(properties);
    }

    static Map<String, String> regions(Path root) throws IOException {
        Map<String, String> regions = new LinkedHashMap<>();
        for (String pkg : List.of("micrometer", "health", "shedlock", "spring", "docs")) {
            try (Stream<Path> files =
                    Files.list(root.resolve("src/test/java/dev/pglease").resolve(pkg))) {
                for (Path file : files.filter(f -> f.toString().endsWith(".java"))
                        .sorted()
                        .toList()) {
                    collect(Files.readAllLines(file, StandardCharsets.UTF_8), regions, file);
                }
            }
        }
        return regions;
    }

    private static void collect(List<String> lines, Map<String, String> regions, Path file) {
        String name = null;
        List<String> body = new ArrayList<>();
        for (String line : lines) {
            Matcher tag = TAG.matcher(line);
            Matcher end = END.matcher(line);
            if (tag.matches()) {
                name = tag.group(1);
                body.clear();
            } else if (end.matches()) {
                assertThat(end.group(1)).as("region end in " + file).isEqualTo(name);
                assertThat(regions.put(name, dedent(body)))
                        .as("region " + name + " defined once")
                        .isNull();
                name = null;
            } else if (name != null) {
                body.add(line);
            }
        }
        assertThat(name).as("unterminated region in " + file).isNull();
    }

    private static String dedent(List<String> lines) {
        int indent = lines.stream()
                .filter(l -> !l.isBlank())
                .mapToInt(l -> l.length() - l.stripLeading().length())
                .min()
                .orElse(0);
        StringBuilder out = new StringBuilder();
        for (String l : lines) {
            out.append(l.isBlank() ? "" : l.substring(indent)).append('\n');
        }
        return out.toString().stripTrailing();
    }

    private static Path projectRoot() {
        return Paths.get(System.getProperty("pglease.buildDirectory", "target"))
                .toAbsolutePath()
                .getParent();
    }
}
