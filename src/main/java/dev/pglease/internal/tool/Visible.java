package dev.pglease.internal.tool;

import java.util.Locale;

/**
 * Text from the database or from a user, made safe to print: no character that a terminal executes (control
 * characters, escape sequences) or that makes one name look like another (bidirectional overrides, zero-width and
 * other invisible characters) reaches the output raw. Every printer of the command-line tool goes through here:
 * {@link #text} for what people read, {@link #json} for JSON, which stays valid and keeps the exact value.
 */
public final class Visible {

    private Visible() {}

    /**
     * Whether a code point is shown escaped: control characters (C0, DEL, C1), format characters (bidirectional
     * marks, embeddings, overrides and isolates, zero-width characters, the byte-order mark, tags), line and
     * paragraph separators, every space but U+0020, lone surrogates, unassigned code points, and the other
     * characters Unicode says to render invisibly (fillers, variation selectors, the combining grapheme joiner).
     */
    public static boolean hidden(int codePoint) {
        if (codePoint >= 0x20 && codePoint < 0x7f) {
            return false;
        }
        switch (Character.getType(codePoint)) {
            case Character.CONTROL,
                    Character.FORMAT,
                    Character.LINE_SEPARATOR,
                    Character.PARAGRAPH_SEPARATOR,
                    Character.SPACE_SEPARATOR,
                    Character.SURROGATE,
                    Character.UNASSIGNED -> {
                return true;
            }
            default -> {
                return defaultIgnorable(codePoint);
            }
        }
    }

    /** Default_Ignorable_Code_Point characters that are not format characters. */
    private static boolean defaultIgnorable(int c) {
        return c == 0x034F
                || c == 0x115F
                || c == 0x1160
                || c == 0x17B4
                || c == 0x17B5
                || (c >= 0x180B && c <= 0x180F)
                || c == 0x3164
                || (c >= 0xFE00 && c <= 0xFE0F)
                || c == 0xFFA0
                || (c >= 0xFFF0 && c <= 0xFFF8)
                || (c >= 0xE0000 && c <= 0xE0FFF);
    }

    /**
     * {@code s} for people: every {@link #hidden} code point as {@code <U+202E>} (four to six hex digits), so that
     * it is seen and can not act. {@code null} stays {@code null}.
     */
    public static String text(String s) {
        if (s == null || clean(s)) {
            return s;
        }
        StringBuilder b = new StringBuilder(s.length() + 16);
        s.codePoints().forEach(cp -> {
            if (hidden(cp)) {
                b.append(String.format(Locale.ROOT, "<U+%04X>", cp));
            } else {
                b.appendCodePoint(cp);
            }
        });
        return b.toString();
    }

    /**
     * JSON text with every {@link #hidden} code point written as a {@code \}{@code uXXXX} escape (a surrogate pair
     * beyond the BMP): the same JSON value, with nothing raw in the text. Such characters can only stand inside
     * strings of JSON that Jackson wrote, where an escape means the same character.
     */
    public static String json(String json) {
        if (json == null || clean(json)) {
            return json;
        }
        StringBuilder b = new StringBuilder(json.length() + 16);
        json.codePoints().forEach(cp -> {
            if (hidden(cp)) {
                for (char unit : Character.toChars(cp)) {
                    b.append(String.format(Locale.ROOT, "\\u%04x", (int) unit));
                }
            } else {
                b.appendCodePoint(cp);
            }
        });
        return b.toString();
    }

    private static boolean clean(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x20 || c >= 0x7f) {
                return s.codePoints().noneMatch(Visible::hidden);
            }
        }
        return true;
    }
}
