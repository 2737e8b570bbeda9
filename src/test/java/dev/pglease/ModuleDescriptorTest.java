package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.module.ModuleDescriptor;
import java.lang.module.ModuleFinder;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The public API is what the module exports: the core package and the optional integrations. The command-line
 * tool and the demo live in the same jar but are not exported, so no application can come to depend on them.
 */
@Tag("core")
class ModuleDescriptorTest {

    @Test
    void exportsTheApiPackagesOnly() throws URISyntaxException {
        ModuleDescriptor module = descriptor();

        assertThat(module.name()).isEqualTo("dev.pglease");
        Set<String> exported = module.exports().stream()
                .filter(e -> !e.isQualified())
                .map(ModuleDescriptor.Exports::source)
                .collect(Collectors.toSet());
        assertThat(exported)
                .containsExactlyInAnyOrder(
                        "dev.pglease",
                        "dev.pglease.health",
                        "dev.pglease.http",
                        "dev.pglease.micrometer",
                        "dev.pglease.shedlock",
                        "dev.pglease.spring");
        assertThat(module.packages())
                .contains(
                        "dev.pglease.cli",
                        "dev.pglease.demo",
                        "dev.pglease.internal.election",
                        "dev.pglease.internal.store",
                        "dev.pglease.internal.sql",
                        "dev.pglease.internal.util");
    }

    @Test
    void onlyTheCoreDependenciesAreRequiredAtRunTime() throws URISyntaxException {
        Set<String> mandatory = descriptor().requires().stream()
                .filter(r -> !r.modifiers().contains(ModuleDescriptor.Requires.Modifier.STATIC))
                .map(ModuleDescriptor.Requires::name)
                .collect(Collectors.toSet());

        assertThat(mandatory)
                .containsExactlyInAnyOrder("java.base", "java.sql", "org.postgresql.jdbc", "flyway.core", "org.slf4j");
    }

    private static ModuleDescriptor descriptor() throws URISyntaxException {
        Path classes = Path.of(PgLease.class
                .getProtectionDomain()
                .getCodeSource()
                .getLocation()
                .toURI());
        return ModuleFinder.of(classes).findAll().iterator().next().descriptor();
    }
}
