package dev.pglease.docs;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * One source per fact: no passage of one page is copied into another, where the copies would drift apart. A page
 * that needs the fact links to the page that has it.
 */
class DuplicatePassagesTest {

    /** Identical consecutive lines (blank and trivial lines skipped) that make a copied passage. */
    static final int LINES = 3;
    /** Words that make a sentence long enough to count as a copied fact. */
    static final int WORDS = 25;

    private static final Pattern TRIVIAL =
            Pattern.compile("^(```.*|~~~.*|[|:\\- ]*|#+ .*|<!--.*-->|[)}\\]];?|\\.\\.\\.)$");
    private static final Pattern SENTENCE_END = Pattern.compile("(?<=[.!?:;])\\s+(?=[A-Z`*(\"\\[])");

    @Test
    void noThreeConsecutiveLinesOfOnePageAppearInAnother() {
        Map<String, Set<String>> where = new LinkedHashMap<>();
        for (Docs.Page page : Docs.pages()) {
            List<String> lines = new ArrayList<>();
            List<Integer> numbers = new ArrayList<>();
            for (int i = 0; i < page.lines().size(); i++) {
                String line = page.lines().get(i).strip().replaceAll("\\s+", " ");
                if (line.length() >= 12 && !TRIVIAL.matcher(line).matches()) {
                    lines.add(line);
                    numbers.add(i + 1);
                }
            }
            for (int i = 0; i + LINES <= lines.size(); i++) {
                String passage = String.join("\n", lines.subList(i, i + LINES));
                where.computeIfAbsent(passage, k -> new LinkedHashSet<>()).add(page.name() + ":" + numbers.get(i));
            }
        }
        List<String> copies = duplicates(where);
        assertThat(copies)
                .as("passages of " + LINES + " or more lines that appear on two pages (keep the fact on one page, "
                        + "link to it from the other)")
                .isEmpty();
    }

    @Test
    void noSentenceOfTwentyFiveWordsOrMoreAppearsOnTwoPages() {
        Map<String, Set<String>> where = new LinkedHashMap<>();
        for (Docs.Page page : Docs.pages()) {
            for (String sentence : sentences(page.prose())) {
                String normal = sentence.toLowerCase(Locale.ROOT)
                        .replaceAll("\\s+", " ")
                        .strip();
                if (normal.split(" ").length >= WORDS) {
                    where.computeIfAbsent(normal, k -> new LinkedHashSet<>()).add(page.name());
                }
            }
        }
        assertThat(duplicates(where))
                .as("sentences of " + WORDS + " words or more that appear on two pages")
                .isEmpty();
    }

    /** The sentences of a page's prose: paragraphs and table cells, split at sentence ends. */
    static List<String> sentences(String prose) {
        List<String> units = new ArrayList<>();
        StringBuilder paragraph = new StringBuilder();
        for (String line : prose.split("\n", -1)) {
            String l = line.strip();
            if (l.startsWith("|")) {
                for (String cell : l.split("\\|")) {
                    units.add(cell);
                }
            } else if (l.isEmpty() || l.startsWith("#")) {
                units.add(paragraph.toString());
                paragraph.setLength(0);
                units.add(l);
            } else {
                paragraph.append(l).append(' ');
            }
        }
        units.add(paragraph.toString());
        List<String> sentences = new ArrayList<>();
        for (String unit : units) {
            for (String s : SENTENCE_END.split(unit)) {
                if (!s.isBlank()) {
                    sentences.add(s.strip());
                }
            }
        }
        return sentences;
    }

    private static List<String> duplicates(Map<String, Set<String>> where) {
        List<String> copies = new ArrayList<>();
        where.forEach((text, places) -> {
            Set<String> pages = new LinkedHashSet<>();
            places.forEach(p -> pages.add(p.replaceAll(":\\d+$", "")));
            if (pages.size() > 1) {
                copies.add(places + "\n" + text + "\n");
            }
        });
        return copies;
    }
}
