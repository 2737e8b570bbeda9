package dev.pglease.docs;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** The project's Markdown pages, as the docs tests read them. */
final class Docs {

    private static final Pattern FENCE = Pattern.compile("^\\s*(```|~~~)");

    private Docs() {}

    /** One Markdown page: its path relative to the project root, and its lines. */
    record Page(String name, List<String> lines) {

        String text() {
            return String.join("\n", lines);
        }

        /** Whether line {@code i} (0-based) is inside a fenced code block, the fence lines included. */
        boolean[] inCode() {
            boolean[] code = new boolean[lines.size()];
            boolean open = false;
            for (int i = 0; i < lines.size(); i++) {
                if (FENCE.matcher(lines.get(i)).find()) {
                    code[i] = true;
                    open = !open;
                } else {
                    code[i] = open;
                }
            }
            return code;
        }

        /** The page's text outside fenced code blocks. */
        String prose() {
            boolean[] code = inCode();
            StringBuilder out = new StringBuilder();
            for (int i = 0; i < lines.size(); i++) {
                out.append(code[i] ? "" : lines.get(i)).append('\n');
            }
            return out.toString();
        }

        /** Every match of {@code pattern} in the page, whole text. */
        List<String> all(Pattern pattern, int group) {
            List<String> found = new ArrayList<>();
            Matcher m = pattern.matcher(text());
            while (m.find()) {
                found.add(m.group(group));
            }
            return found;
        }
    }

    static Path root() {
        return Paths.get(System.getProperty("pglease.buildDirectory", "target"))
                .toAbsolutePath()
                .getParent();
    }

    /** README.md, CHANGELOG.md, CONTRIBUTING.md and every page under docs/. */
    static List<Page> pages() {
        Path root = root();
        List<Path> paths = new ArrayList<>();
        for (String top : List.of("README.md", "CHANGELOG.md", "CONTRIBUTING.md")) {
            if (Files.exists(root.resolve(top))) {
                paths.add(root.resolve(top));
            }
        }
        try (Stream<Path> docs = Files.walk(root.resolve("docs"))) {
            docs.filter(p -> p.toString().endsWith(".md")).sorted().forEach(paths::add);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return paths.stream().map(p -> read(root, p)).toList();
    }

    static Page page(String name) {
        return read(root(), root().resolve(name));
    }

    private static Page read(Path root, Path path) {
        try {
            return new Page(
                    root.relativize(path).toString().replace('\\', '/'),
                    Files.readAllLines(path, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
