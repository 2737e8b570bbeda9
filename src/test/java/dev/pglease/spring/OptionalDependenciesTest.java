package dev.pglease.spring;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.TestDatabase;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The integrations stay optional: the core library runs with none of Micrometer, ShedLock or Spring on the class
 * path, and no class of the core package refers to them.
 */
class OptionalDependenciesTest {

    /** The jars the core needs at run time: the JDBC driver, Flyway and the SLF4J API. */
    private static final Pattern CORE_JARS = Pattern.compile(
            "(postgresql|checker-qual|flyway-core|flyway-database-postgresql|slf4j-api)-[0-9][^/\\\\]*\\.jar");

    private static final Pattern FLYWAY_JACKSON =
            Pattern.compile("jackson-(databind|core|annotations)-[0-9][^/\\\\]*\\.jar");

    private static final String[] OPTIONAL_PACKAGES = {"io/micrometer", "net/javacrumbs", "org/springframework"};

    @Test
    void theCoreRunsInAJvmWithoutAnyOptionalDependency() throws Exception {
        List<String> classPath = new ArrayList<>();
        classPath.add(classesDirectory().toString());
        classPath.add(testClassesDirectory().toString());
        // Flyway before 13 (Spring Boot's managed 11.x and 12.x: profiles boot40, boot-flyway) itself requires Jackson
        boolean flywayNeedsJackson =
                Integer.parseInt(PgLeaseStartup.flywayVersion().split("\\.")[0]) < 13;
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            String name = Paths.get(entry).getFileName().toString();
            if (CORE_JARS.matcher(name).matches()
                    || flywayNeedsJackson && FLYWAY_JACKSON.matcher(name).matches()) {
                classPath.add(entry);
            }
        }
        assertThat(classPath).anyMatch(e -> e.contains("postgresql")).anyMatch(e -> e.contains("flyway-core"));
        // by file name: the checkout's own path may contain any of these words
        assertThat(classPath)
                .map(e -> Paths.get(e).getFileName().toString())
                .noneMatch(e -> e.contains("micrometer") || e.contains("shedlock") || e.contains("spring"));

        String schema = PgLeaseAutoConfigurationTest.uniqueSchema("core");
        Path java = Paths.get(System.getProperty("java.home"), "bin", "java");
        Process process = new ProcessBuilder(
                        java.toString(),
                        "-cp",
                        String.join(File.pathSeparator, classPath),
                        CoreOnlyProgram.class.getName(),
                        TestDatabase.jdbcUrl(),
                        schema)
                .redirectErrorStream(true)
                .start();
        try {
            boolean exited = process.waitFor(60, TimeUnit.SECONDS);
            String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertThat(exited).as("the program finished: " + output).isTrue();
            assertThat(process.exitValue()).as(output).isZero();
            assertThat(output).contains("OK token=1").doesNotContain("PRESENT");
        } finally {
            process.destroyForcibly();
        }
    }

    @Test
    void noCoreClassRefersToAnOptionalDependency() throws IOException {
        Path core = classesDirectory().resolve("dev/pglease");
        List<String> offenders;
        try (Stream<Path> files = Files.list(core)) {
            offenders = files.filter(p -> p.toString().endsWith(".class"))
                    .filter(p -> {
                        String bytes = new String(read(p), StandardCharsets.ISO_8859_1);
                        return Arrays.stream(OPTIONAL_PACKAGES).anyMatch(bytes::contains);
                    })
                    .map(p -> p.getFileName().toString())
                    .collect(Collectors.toList());
        }
        assertThat(offenders)
                .as("core classes referring to io.micrometer, net.javacrumbs or org.springframework")
                .isEmpty();
        try (Stream<Path> files = Files.list(core)) {
            assertThat(files.filter(p -> p.toString().endsWith(".class")).count())
                    .as("core classes checked")
                    .isGreaterThan(10);
        }
    }

    private static byte[] read(Path p) {
        try {
            return Files.readAllBytes(p);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static Path classesDirectory() {
        return buildDirectory().resolve("classes");
    }

    private static Path testClassesDirectory() {
        return buildDirectory().resolve("test-classes");
    }

    private static Path buildDirectory() {
        return Paths.get(System.getProperty("pglease.buildDirectory", "target"));
    }
}
