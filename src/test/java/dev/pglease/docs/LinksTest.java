package dev.pglease.docs;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Every relative link of the Markdown pages leads somewhere: the file exists, and an anchor names a heading of the
 * page it points to (as GitHub makes anchors from headings).
 */
class LinksTest {

    private static final Pattern LINK = Pattern.compile("\\[[^\\]]*\\]\\(([^)\\s]+)\\)");
    private static final Pattern HEADING = Pattern.compile("(?m)^#{1,6} (.+)$");

    @Test
    void everyRelativeLinkLeadsToAFileAndAHeadingThatExist() {
        Path root = Docs.root();
        List<String> broken = new ArrayList<>();
        for (Docs.Page page : Docs.pages()) {
            Path dir = root.resolve(page.name()).getParent();
            Matcher m = LINK.matcher(page.prose());
            while (m.find()) {
                String target = m.group(1);
                if (target.matches("^[a-z]+:.*")) {
                    continue; // http(s), mailto
                }
                String file = target.contains("#") ? target.substring(0, target.indexOf('#')) : target;
                String anchor = target.contains("#") ? target.substring(target.indexOf('#') + 1) : null;
                Path resolved = file.isEmpty()
                        ? root.resolve(page.name())
                        : dir.resolve(file).normalize();
                if (!Files.exists(resolved)) {
                    broken.add(page.name() + ": " + target + " (no such file)");
                } else if (anchor != null && resolved.toString().endsWith(".md")) {
                    Docs.Page linked = Docs.page(root.relativize(resolved).toString());
                    if (!anchors(linked).contains(anchor)) {
                        broken.add(page.name() + ": " + target + " (no such heading)");
                    }
                }
            }
        }
        assertThat(broken).as("broken links").isEmpty();
    }

    /** GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
    static Set<String> anchors(Docs.Page page) {
        Set<String> anchors = new HashSet<>();
        Matcher m = HEADING.matcher(page.prose());
        while (m.find()) {
            String slug = m.group(1)
                    .strip()
                    .toLowerCase(Locale.ROOT)
                    .replaceAll("[^\\p{L}\\p{N} _-]", "")
                    .replace(' ', '-');
            String unique = slug;
            for (int n = 1; !anchors.add(unique); n++) {
                unique = slug + "-" + n;
            }
        }
        return anchors;
    }
}
