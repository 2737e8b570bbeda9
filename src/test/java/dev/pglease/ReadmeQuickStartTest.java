package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.cli.NodeProcess;
import java.io.IOException;
import java.io.StringWriter;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.SimpleJavaFileObject;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's Java snippets compile exactly as written, against the library as built. */
@Tag("core")
class ReadmeQuickStartTest {

    @Test
    void quickStartCompiles(@TempDir Path out) throws IOException {
        compiles("quick-start", out);
    }

    @Test
    void theFenceTransactionSnippetCompiles(@TempDir Path out) throws IOException {
        compiles("fence-transaction", out);
    }

    private static void compiles(String block, Path out) throws IOException {
        String readme = Files.readString(Path.of("README.md"));
        Matcher m = Pattern.compile(
                        "<!-- " + block + ":begin -->\\s*```java\\n(.*?)```\\s*<!-- " + block + ":end -->",
                        Pattern.DOTALL)
                .matcher(readme);
        assertThat(m.find()).as("README has a " + block + " java block").isTrue();
        String source = m.group(1);
        Matcher cls = Pattern.compile("public class (\\w+)").matcher(source);
        assertThat(cls.find()).isTrue();

        JavaCompiler compiler = ToolProvider.getSystemJavaCompiler();
        JavaFileObject file =
                new SimpleJavaFileObject(
                        URI.create("string:///" + cls.group(1) + ".java"), JavaFileObject.Kind.SOURCE) {
                    @Override
                    public CharSequence getCharContent(boolean ignoreEncodingErrors) {
                        return source;
                    }
                };
        StringWriter diagnostics = new StringWriter();
        boolean ok = compiler.getTask(
                        diagnostics,
                        null,
                        null,
                        List.of("-classpath", NodeProcess.classpath(), "-d", out.toString(), "-Xlint:all", "-Werror"),
                        null,
                        List.of(file))
                .call();
        assertThat(ok).as("compiles without warnings:\n" + diagnostics).isTrue();
        assertThat(out.resolve(cls.group(1) + ".class")).exists();
    }
}
