package dev.pglease.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pglease.security.HostileSchema;
import dev.pglease.testkit.JavaProcess;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code pglease watch} treats a notification as a wake-up, never as a fact: any login that can connect may send
 * {@code NOTIFY "<schema>.leases"} with any payload (a fake force release with a made-up token, a holder full of
 * terminal escape sequences, {@code null}, text that is not JSON). Watch keeps running (and exits 0 on SIGTERM),
 * prints no control character, and prints no event that is not in lease_events.
 */
class WatchHostileNotifyTest {

    private static final String ESCAPES = "evil\u001b]0;owned\u0007\u001b[2J\u001b[31mred";
    private static HostileSchema h;
    private static final List<Run> runs = new ArrayList<>();

    /** One watch process and what became of it. */
    record Run(String mode, byte[] out, boolean aliveAfterPayloads, int exitCode) {
        String text() {
            return new String(out, StandardCharsets.UTF_8);
        }
    }

    @BeforeAll
    static void watchWhileALoginSendsHostileNotifications() throws Exception {
        h = HostileSchema.create();
        List<Process> processes = new ArrayList<>();
        List<File> outputs = new ArrayList<>();
        for (String mode : List.of("table", "json")) {
            File out = File.createTempFile("pglease-watch-" + mode, ".out");
            out.deleteOnExit();
            List<String> args =
                    new ArrayList<>(List.of("watch", "--jdbc-url", h.url(h.observer), "--schema", h.schema));
            if (mode.equals("json")) {
                args.add("--json");
            }
            processes.add(new ProcessBuilder(JavaProcess.pglease(JavaProcess.SMALL, args.toArray(String[]::new)))
                    .redirectOutput(out)
                    .redirectError(new File(out.getPath() + ".err"))
                    .start());
            outputs.add(out);
        }
        try {
            // the table says so on stdout, --json on stderr (stdout carries only events)
            Awaitility.await("both watches listen (stderr: " + outputs.get(0).getPath() + ".err)")
                    .atMost(Duration.ofSeconds(30))
                    .pollInterval(Duration.ofMillis(50))
                    .until(() -> Files.readString(outputs.get(0).toPath()).contains("(LISTEN")
                            && Files.readString(Path.of(outputs.get(1).getPath() + ".err"))
                                    .contains("(LISTEN"));
            HostileSchema.run(h.candA, "SELECT * FROM " + h.schema + ".acquire('before', 'a', 60000)");
            for (File out : outputs) {
                awaitOutputContains(out, "before", processes);
            }
            String fake =
                    "{\"name\":\"before\",\"holder\":\"attacker\",\"token\":4294967297,\"kind\":\"force_released\"}";
            String escapes = "{\"name\":\"" + json(ESCAPES) + "\",\"holder\":\"" + json(ESCAPES)
                    + "\",\"token\":2,\"kind\":\"" + json(ESCAPES) + "\"}";
            try (Connection c = h.as(h.nobody).getConnection();
                    PreparedStatement ps = c.prepareStatement("SELECT pg_notify(?, ?)")) {
                for (String payload : List.of(fake, escapes, "{not json", "null", "[]", "42", "{\"name\":null}")) {
                    ps.setString(1, h.schema + ".leases");
                    ps.setString(2, payload);
                    ps.execute();
                }
            }
            HostileSchema.run(h.candA, "SELECT * FROM " + h.schema + ".acquire('after', 'a', 60000)");
            for (int i = 0; i < processes.size(); i++) {
                Process p = processes.get(i);
                try {
                    awaitOutputContains(outputs.get(i), "after", processes);
                } catch (RuntimeException died) {
                    // recorded below: not alive, or the real change never printed
                }
                boolean alive = p.isAlive();
                int code = alive ? (JavaProcess.terminate(p, 10_000) ? p.exitValue() : -1) : p.exitValue();
                runs.add(new Run(
                        i == 0 ? "table" : "json",
                        Files.readAllBytes(outputs.get(i).toPath()),
                        alive
                                && new String(Files.readAllBytes(outputs.get(i).toPath()), StandardCharsets.UTF_8)
                                        .contains("after"),
                        code));
            }
        } finally {
            processes.forEach(JavaProcess::kill);
        }
    }

    @AfterAll
    static void tearDown() {
        runs.clear();
    }

    @Test
    void watchKeepsRunningThroughAnyPayloadAndExitsZeroOnSigterm() {
        for (Run r : runs) {
            assertThat(r.aliveAfterPayloads())
                    .as(
                            "watch (%s) still running and printing real changes after hostile"
                                    + " notifications; exit code %d; output:\n%s",
                            r.mode(), r.exitCode(), r.text())
                    .isTrue();
            assertThat(r.exitCode())
                    .as("exit code of watch (%s) on SIGTERM", r.mode())
                    .isZero();
        }
    }

    @Test
    void watchPrintsNoControlCharacters() {
        for (Run r : runs) {
            List<String> found = new ArrayList<>();
            String text = r.text();
            for (int i = 0; i < text.length(); i++) {
                char c = text.charAt(i);
                if ((c < 0x20 && c != '\n' && c != '\t') || (c >= 0x7f && c <= 0x9f)) {
                    found.add(String.format("U+%04X at %d", (int) c, i));
                }
            }
            assertThat(found)
                    .as(
                            "control characters in the output of watch (%s):\n%s",
                            r.mode(), text.replace("\u001b", "<ESC>").replace("\u0007", "<BEL>"))
                    .isEmpty();
        }
    }

    @Test
    void watchPrintsNoEventThatIsNotInLeaseEvents() throws Exception {
        Run json =
                runs.stream().filter(r -> r.mode().equals("json")).findFirst().orElseThrow();
        ObjectMapper mapper = new ObjectMapper();
        List<String> invented = new ArrayList<>();
        for (String line : json.text().lines().filter(l -> l.startsWith("{")).toList()) {
            @SuppressWarnings("unchecked")
            Map<String, Object> e = mapper.readValue(line, Map.class);
            String exists = HostileSchema.query(
                    null,
                    "SELECT count(*) FROM " + h.schema + ".lease_events WHERE name = "
                            + literal(String.valueOf(e.get("lease"))) + " AND kind = "
                            + literal(String.valueOf(e.get("kind")))
                            + " AND token = " + (e.get("token") instanceof Number n ? n.longValue() : -1));
            if ("0".equals(exists)) {
                invented.add(line);
            }
        }
        assertThat(invented)
                .as("events watch printed that lease_events does not hold")
                .isEmpty();
    }

    private static void awaitOutputContains(File out, String text, List<Process> processes) {
        Awaitility.await("watch prints " + text)
                .atMost(Duration.ofSeconds(20))
                .pollInterval(Duration.ofMillis(50))
                .until(() ->
                        Files.readString(out.toPath(), StandardCharsets.UTF_8).contains(text)
                                || processes.stream().noneMatch(Process::isAlive));
        try {
            if (!Files.readString(out.toPath(), StandardCharsets.UTF_8).contains(text)) {
                throw new IllegalStateException("watch ended before printing " + text);
            }
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    private static String json(String s) {
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) {
            b.append(c < 0x20 ? String.format("\\u%04x", (int) c) : String.valueOf(c));
        }
        return b.toString();
    }

    private static String literal(String s) {
        return "'" + s.replace("'", "''") + "'";
    }
}
