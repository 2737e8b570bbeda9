package dev.pglease.internal.tool;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * No character a terminal acts on, or that hides or reorders text, is printed raw: people see {@code <U+XXXX>},
 * JSON carries an escape that parses back to the same value.
 */
@Tag("core")
class VisibleTest {

    @ParameterizedTest(name = "U+{0}")
    @ValueSource(
            ints = {
                0x00, 0x07, 0x09, 0x0A, 0x0D, 0x1B, 0x7F, 0x85, 0x9B, 0xA0, 0xAD, 0x034F, 0x061C, 0x115F, 0x180E,
                0x200B, 0x200D, 0x200E, 0x2028, 0x2029, 0x202A, 0x202E, 0x2060, 0x2066, 0x2069, 0x3000, 0x3164, 0xFE0F,
                0xFEFF, 0xD800, 0xE0001, 0xE0041
            })
    void aHiddenCharacterIsShownAsItsCodePointAndEscapedInJson(int codePoint) throws Exception {
        String raw = "pay" + Character.toString(codePoint) + "roll";
        assertThat(Visible.hidden(codePoint)).isTrue();
        assertThat(Visible.text(raw)).isEqualTo(String.format("pay<U+%04X>roll", codePoint));

        String json = Visible.json(new ObjectMapper().writeValueAsString(Map.of("name", raw)));
        assertThat(json.codePoints().filter(Visible::hidden).toArray())
                .as("raw hidden characters in %s", json)
                .isEmpty();
        if (codePoint < 0xD800 || codePoint > 0xDFFF) {
            assertThat(new ObjectMapper().readValue(json, Map.class)).containsEntry("name", raw);
        }
    }

    @Test
    void ordinaryTextIsLeftAlone() {
        for (String s : List.of(
                "payments", "node1/4711/9f3a0c2e", "Zürich-Ödön", "日本語", "emoji \uD83D\uDE80", "a<U+202E>b", "")) {
            assertThat(Visible.text(s)).isEqualTo(s);
            assertThat(Visible.json("\"" + s + "\"")).isEqualTo("\"" + s + "\"");
        }
        assertThat(Visible.text(null)).isNull();
    }

    @Test
    void theNodeEventsStayOneValidJsonObjectPerLine() throws Exception {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        JsonLines out = new JsonLines(new java.io.PrintStream(bytes, true, "UTF-8"), 0);
        Map<String, Object> e = out.event("write");
        e.put("reason", "ERROR: bad\u001b[2J\u202Evalue\nsecond line\u007f");
        out.emit(e);
        String text = bytes.toString("UTF-8");
        assertThat(text.lines()).hasSize(1);
        assertThat(text.strip().codePoints().filter(Visible::hidden).toArray()).isEmpty();
        assertThat(new ObjectMapper().readValue(text, Map.class)).containsEntry("reason", e.get("reason"));
    }
}
