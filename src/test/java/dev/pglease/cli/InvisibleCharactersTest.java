package dev.pglease.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import dev.pglease.security.HostileSchema;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * One name can not pass for another: lease names and holders with a bidirectional override (U+202E) or a
 * zero-width character (U+200B, U+200D, U+FEFF, U+2060) are refused by the Java API (IllegalArgumentException
 * naming the value and the rule) and by the table when written through SQL, and {@code pglease status} and
 * {@code pglease history} never print them raw.
 */
class InvisibleCharactersTest {

    private static HostileSchema h;

    @BeforeAll
    static void setUp() {
        h = HostileSchema.create();
    }

    private static String name(int codePoint) {
        return "pay" + Character.toString(codePoint) + "roll";
    }

    private static String hex(int codePoint) {
        return String.format("U+%04X", codePoint);
    }

    @ParameterizedTest(name = "U+{0}")
    @ValueSource(ints = {0x202E, 0x200B, 0x200D, 0xFEFF, 0x2060})
    void theJavaApiRefusesLeaseNamesAndHolderLabelsWithTheCharacter(int codePoint) {
        try (PgLease p = PgLease.create(
                h.as(h.candA),
                LeaseConfig.builder()
                        .schema(h.schema)
                        .leaseDuration(Duration.ofSeconds(10))
                        .renewDeadline(Duration.ofSeconds(6))
                        .build())) {
            List<Throwable> outcomes = new ArrayList<>();
            outcomes.add(catchThrowable(() -> p.tryLock(name(codePoint), Duration.ofSeconds(5))));
            outcomes.add(catchThrowable(() -> p.leader(name(codePoint))));
            outcomes.add(catchThrowable(
                    () -> LeaseConfig.builder().holderLabel(name(codePoint)).build()));
            for (Throwable t : outcomes) {
                assertThat(t)
                        .as("a name or holder label with %s", hex(codePoint))
                        .isInstanceOf(IllegalArgumentException.class);
                assertThat(t.getMessage()).as("the refusal names the character").contains(hex(codePoint));
            }
        }
    }

    @ParameterizedTest(name = "U+{0}")
    @ValueSource(ints = {0x202E, 0x200B, 0x200D, 0xFEFF, 0x2060})
    void theTableRefusesNamesAndHoldersWithTheCharacterWrittenThroughSql(int codePoint) throws Exception {
        String n = name(codePoint);
        Throwable asName = catchThrowable(() -> HostileSchema.run(
                h.candA,
                "INSERT INTO " + h.schema + ".leases" + " (name, holder, token, expires_at) VALUES ('" + n
                        + "', 'a', 1, clock_timestamp() + interval '5 s')"));
        Throwable asHolder = catchThrowable(() -> HostileSchema.run(
                h.candA,
                "INSERT INTO " + h.schema + ".leases"
                        + " (name, holder, token, expires_at) VALUES ('holder-" + hex(codePoint) + "', '" + n + "', 1,"
                        + " clock_timestamp() + interval '5 s')"));
        assertThat(asName)
                .as("a lease named with %s, inserted by a candidate", hex(codePoint))
                .isNotNull();
        assertThat(asHolder)
                .as("a holder with %s, inserted by a candidate", hex(codePoint))
                .isNotNull();
    }

    @ParameterizedTest(name = "U+{0}")
    @ValueSource(ints = {0x202E, 0x200B, 0x200D, 0xFEFF, 0x2060})
    void statusAndHistoryNeverPrintTheCharacterRaw(int codePoint) throws Exception {
        String n = "shown-" + hex(codePoint) + Character.toString(codePoint);
        try {
            // planted as the superuser, past any client: what a hand edit or an older schema may have left
            HostileSchema.superuser("INSERT INTO " + h.schema + ".leases (name, holder, token, expires_at) VALUES ('"
                    + n + "', '" + n + "', 1, clock_timestamp() + interval '1 minute')");
        } catch (IllegalStateException refused) {
            // the table refuses such names even from the superuser: nothing can show them
        }
        String raw = Character.toString(codePoint);
        for (String[] command : List.of(
                new String[] {"status"}, new String[] {"status", "--json"}, new String[] {"history", n}, new String[] {
                    "history", n, "--json"
                })) {
            String out = run(command);
            assertThat(out)
                    .as("output of pglease %s", String.join(" ", command))
                    .doesNotContain(raw);
        }
    }

    @ParameterizedTest(name = "U+{0}")
    @ValueSource(ints = {0x202E, 0x200B, 0x1B, 0x07, 0x9B})
    void errorsThatEchoWhatTheUserTypedShowTheCharacterAsItsCodePoint(int codePoint) {
        String typed = "pay" + Character.toString(codePoint) + "roll";
        for (String[] command : List.of(
                new String[] {"status", typed},
                new String[] {"history", typed},
                new String[] {"release", typed},
                new String[] {"handoff", typed, "--to", typed},
                new String[] {"release", "payroll", "--" + typed},
                new String[] {"watch", "--for", typed},
                new String[] {"node", "--lease", typed, "--work", typed})) {
            String out = run(command);
            assertThat(out)
                    .as("output of pglease %s", String.join(" ", command))
                    .doesNotContain(Character.toString(codePoint))
                    .contains(hex(codePoint));
        }
        String badSchema = runAs(new String[] {"status", "--jdbc-url", h.url(h.observer), "--schema", typed});
        assertThat(badSchema).doesNotContain(Character.toString(codePoint)).contains(hex(codePoint));
    }

    private static String run(String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.addAll(List.of("--jdbc-url", h.url(h.observer), "--schema", h.schema));
        return runAs(all.toArray(String[]::new));
    }

    private static String runAs(String[] all) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        picocli.CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        cl.execute(all);
        return out + err.toString();
    }
}
