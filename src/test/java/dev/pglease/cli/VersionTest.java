package dev.pglease.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.jar.Attributes;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code pglease --version} prints the version the build wrote into the jar's manifest, never a hard-coded one. */
class VersionTest {

    @TempDir
    Path dir;

    @Test
    void theVersionComesFromTheJarManifest() throws IOException {
        Path jar = jarWithManifest("7.3.1-test");

        assertThat(Main.ManifestVersion.version(jar)).isEqualTo("7.3.1-test");
    }

    @Test
    void aJarWithoutImplementationVersionSaysSo() throws IOException {
        Path jar = jarWithManifest(null);

        assertThat(Main.ManifestVersion.version(jar)).startsWith("unknown (no Implementation-Version in ");
    }

    @Test
    void classesLoadedFromADirectoryHaveNoVersion() {
        // the build's own tests load Main from target/classes
        assertThat(Main.ManifestVersion.version(dir)).isEqualTo("unknown (not run from a jar)");

        StringWriter out = new StringWriter();
        int code = Main.commandLine().setOut(new PrintWriter(out)).execute("--version");

        assertThat(code).isZero();
        assertThat(out.toString().strip()).isEqualTo("pglease unknown (not run from a jar)");
    }

    private Path jarWithManifest(String version) throws IOException {
        Manifest manifest = new Manifest();
        manifest.getMainAttributes().put(Attributes.Name.MANIFEST_VERSION, "1.0");
        if (version != null) {
            manifest.getMainAttributes().put(Attributes.Name.IMPLEMENTATION_VERSION, version);
        }
        Path jar = dir.resolve("pglease-test.jar");
        try (OutputStream file = Files.newOutputStream(jar);
                JarOutputStream out = new JarOutputStream(file, manifest)) {
            out.flush();
        }
        return jar;
    }
}
