package dev.pglease.docs;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.LeaseException;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * docs/troubleshooting.md has one section per {@code LeaseException.Reason}, in the order of the enum, each saying
 * when it happens and what to do: a reason added to the code without its entry fails here.
 */
class TroubleshootingDocTest {

    @Test
    void everyReasonHasASectionWithItsCauseAndFix() {
        Docs.Page page = Docs.page("docs/troubleshooting.md");
        List<String> sections = Pattern.compile("(?m)^### `([A-Z_]+)`$")
                .matcher(page.text())
                .results()
                .map(r -> r.group(1))
                .toList();
        List<String> reasons =
                Arrays.stream(LeaseException.Reason.values()).map(Enum::name).toList();
        assertThat(sections)
                .as("the reason sections of docs/troubleshooting.md")
                .isEqualTo(reasons);
        for (String reason : reasons) {
            String text = page.text();
            int start = text.indexOf("### `" + reason + "`");
            int end = text.indexOf("\n#", start + 1);
            String section = text.substring(start, end < 0 ? text.length() : end);
            assertThat(section).as(reason).contains("**When**").contains("**Do**");
        }
    }
}
