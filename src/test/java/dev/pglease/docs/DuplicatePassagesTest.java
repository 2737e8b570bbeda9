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
        assertThat(copiedPassages(Docs.pages()))
                .as("passages of " + LINES + " or more lines that appear on two pages (keep the fact on one page, "
                        + "link to it from the other)")
                .isEmpty();
    }

    @Test
    void noSentenceOfTwentyFiveWordsOrMoreAppearsOnTwoPages() {
        assertThat(copiedSentences(Docs.pages()))
                .as("sentences of " + WORDS + " words or more that appear on two pages")
                .isEmpty();
    }

    /** The checks find a copy planted in two pages, and leave short or single repeated lines alone. */
    @Test
    void aPlantedCopyIsFoundAndShortRepeatsAreNot() {
        String sentence = "A leader that stepped down only because its renewal came back late sends one more renewal of"
                + " the same token and leads again with it if that one is answered in time.";
        List<String> copied = List.of(
                "First line of the copied passage.",
                "Second line of the copied passage.",
                "Third line of the copied passage.");
        Docs.Page a = new Docs.Page("a.md", concat(List.of("# A", "", sentence, "This line is only on a."), copied));
        Docs.Page b = new Docs.Page("b.md", concat(List.of("# B", sentence, "", "This line is only on b."), copied));
        assertThat(copiedPassages(List.of(a, b))).hasSize(1);
        assertThat(copiedSentences(List.of(a, b))).hasSize(1);

        Docs.Page c = new Docs.Page("c.md", List.of("| column | other |", "|---|---|", "Short words here.", "A line."));
        Docs.Page d = new Docs.Page("d.md", List.of("| column | other |", "|---|---|", "Short words here.", "Other."));
        assertThat(copiedPassages(List.of(c, d))).isEmpty();
        assertThat(copiedSentences(List.of(c, d))).isEmpty();
    }

    private static List<String> concat(List<String> first, List<String> second) {
        List<String> all = new ArrayList<>(first);
        all.addAll(second);
        return all;
    }

    /** Every run of {@link #LINES} significant lines found on more than one page, with where. */
    static List<String> copiedPassages(List<Docs.Page> pages) {
        Map<String, Set<String>> where = new LinkedHashMap<>();
        for (Docs.Page page : pages) {
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
        return duplicates(where);
    }

    /** Every sentence of {@link #WORDS} words or more found on more than one page, with where. */
    static List<String> copiedSentences(List<Docs.Page> pages) {
        Map<String, Set<String>> where = new LinkedHashMap<>();
        for (Docs.Page page : pages) {
            for (String sentence : sentences(page.prose())) {
                String normal = sentence.toLowerCase(Locale.ROOT)
                        .replaceAll("\\s+", " ")
                        .strip();
                if (normal.split(" ").length >= WORDS) {
                    where.computeIfAbsent(normal, k -> new LinkedHashSet<>()).add(page.name());
                }
            }
        }
        return duplicates(where);
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
