package dev.pglease.anylang;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** docs/any-language.md shows the tested campaigner, and the protocol functions and errors as they are. */
class AnyLanguageDocTest {

    private static final Path PAGE = Path.of("docs/any-language.md");

    @Test
    void thePythonExampleIsTheTestedCampaignerVerbatim() throws IOException {
        Matcher m = Pattern.compile(
                        "<!-- campaigner\\.py:begin -->\\n```python\\n(.*?)```\\n<!-- campaigner\\.py:end -->",
                        Pattern.DOTALL)
                .matcher(Files.readString(PAGE));
        assertThat(m.find())
                .as("docs/any-language.md has the campaigner.py block")
                .isTrue();
        assertThat(m.group(1)).isEqualTo(Files.readString(Campaigners.PYTHON_SCRIPT));
        assertThat(m.find()).as("only one campaigner.py block").isFalse();
    }

    @Test
    void everySqlstateAClientMeetsIsDocumented() throws IOException {
        String page = Files.readString(PAGE);
        for (String sqlstate : new String[] {"PL001", "PL002", "PL003", "22023", "25006"}) {
            assertThat(page)
                    .as("docs/any-language.md explains SQLSTATE " + sqlstate)
                    .contains("| `" + sqlstate + "` |");
        }
    }

    @Test
    void theDocumentedSignaturesAreTheMigrationsOwn() throws IOException {
        String page = Files.readString(PAGE);
        String migrations = Files.readString(Path.of("db/migration/R__03_lease_protocol.sql"));
        Matcher documented = Pattern.compile(
                        "\\| `((acquire|renew|renew_all|release|fence|status)\\((p_[^`]*)\\))` \\|")
                .matcher(page);
        int seen = 0;
        while (documented.find()) {
            seen++;
            String declared = "${flyway:defaultSchema}." + documented.group(2) + "(" + documented.group(3) + ")";
            assertThat(migrations.replaceAll("\\s+", " "))
                    .as("the migrations declare " + documented.group(1))
                    .contains(declared.replaceAll("\\s+", " "));
        }
        assertThat(seen).as("functions in the table of docs/any-language.md").isEqualTo(6);
    }
}
