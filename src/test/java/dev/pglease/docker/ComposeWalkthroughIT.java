package dev.pglease.docker;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * Runs the Docker Compose walkthrough of docs/demo.md, command by command, against the project's docker-compose.yml:
 * PostgreSQL, migrate and the workload's set-up (as the owner login), three {@code pglease node} containers (as a
 * candidate-only login, writing to tables protected with the lease) and watch. The leader is found from
 * {@code status --json}; its log is read until it announces an open fenced write ({@code open}, from
 * {@code --write-hold}) with time enough left for {@code docker-compose pause} to freeze it inside that
 * transaction, past its 12 s lease (when the database shows that the write committed before the pause took hold,
 * the leader is unpaused and frozen again, at most five times). Another node must then lead with a higher token.
 * PostgreSQL's log must show that it ended the frozen transaction before that grant (the fence bounds its idle time
 * to the holder's remaining validity), so the takeover did not wait for the row lock. After the unpause the held
 * write, begun before the pause, must be reported refused under the old token, the old leader must stand by, and
 * the database must hold no write committed under a token after a higher token was granted. Killing the new leader
 * must bring the next takeover; {@code down -v} must leave no container, network or volume behind. The page's
 * block is the script: a command added there runs here, so the docs can not drift from what is tested.
 * {@code $LEADER} and {@code $NEXT} in it stand for the services the status showed.
 *
 * <p>It needs the {@code -all} jar, so it runs after {@code package} (an integration test of {@code verify}), with
 * the local images ({@code docker/build-images.sh}), a project name of its own and a free PostgreSQL port.
 */
@DockerEngine.Required
class ComposeWalkthroughIT {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern BLOCK =
            Pattern.compile("<!-- compose walkthrough -->\\s*```sh\\n(.*?)```", Pattern.DOTALL);
    private static final long LEASE_MS = 12_000;
    /** Time an open write must have left when it is seen, so that the pause lands before it commits. */
    private static final long PAUSE_BUDGET_MS = 5_000;

    private static final Pattern ENDED = Pattern.compile("(\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3} \\S+) "
            + "\\[\\d+] FATAL: +terminating connection due to (idle-in-transaction|transaction) timeout");

    private final String project =
            "pgleasewalk" + Integer.toHexString(ThreadLocalRandom.current().nextInt(1 << 20));
    private final Map<String, String> env = new HashMap<>();
    private final List<String> timeline = new ArrayList<>();
    private final long t0 = System.currentTimeMillis();
    private int port;

    /** The walkthrough commands, in order, as docs/demo.md gives them (comments stripped). */
    static List<String> walkthrough() throws IOException {
        Matcher m = BLOCK.matcher(Files.readString(Path.of("docs/demo.md")));
        assertThat(m.find())
                .as("docs/demo.md has a ```sh block after <!-- compose walkthrough -->")
                .isTrue();
        List<String> commands = new ArrayList<>();
        for (String line : m.group(1).split("\n")) {
            String command = line.replaceAll("\\s+#.*$", "").trim();
            if (!command.isEmpty()) {
                commands.add(command);
            }
        }
        return commands;
    }

    @Test
    void theReadmeWalkthroughFailsOverAndRefusesTheStaleLeader() throws Exception {
        List<String> commands = walkthrough();
        assertThat(commands)
                .as("the walkthrough's steps")
                .anyMatch(c -> c.startsWith("docker-compose pause $LEADER"))
                .anyMatch(c -> c.startsWith("docker-compose logs --tail 1 $LEADER"))
                .anyMatch(c -> c.startsWith("docker-compose logs postgres"))
                .anyMatch(c -> c.startsWith("docker-compose exec -T postgres psql"))
                .anyMatch(c -> c.startsWith("docker-compose unpause $LEADER"))
                .anyMatch(c -> c.startsWith("docker-compose kill $NEXT"))
                .last()
                .isEqualTo("docker-compose down -v");
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        env.put("COMPOSE_PROJECT_NAME", project);
        env.put("PGLEASE_POSTGRES_IMAGE", DockerEngine.postgresImage());
        env.put("PGLEASE_JRE_IMAGE", DockerEngine.jreImage());
        env.put("PGLEASE_POSTGRES_PORT", String.valueOf(port));

        String leader = null;
        String next = null;
        long leaderToken = 0;
        long nextToken = 0;
        long pausedAt = 0;
        long unpausedAt = 0;
        long killedAt = 0;
        long takeover = -1;
        long second = -1;
        long grant = 0;
        JsonNode held = null;
        String openCommand = null;
        for (String command : commands) {
            String resolved = command.replace("$LEADER", String.valueOf(leader)).replace("$NEXT", String.valueOf(next));
            if (command.startsWith("./mvnw")) {
                assertThat(Path.of("target").resolve(jarName()))
                        .as("the build made the jar the nodes mount")
                        .exists();
                continue;
            }
            if (command.contains("status --json")) {
                if (leader == null) {
                    JsonNode lease = awaitHolder(resolved, h -> true);
                    leader = service(lease);
                    leaderToken = lease.get("token").asLong();
                    note("leader " + lease.get("holder").asText() + " with token " + leaderToken);
                } else if (next == null) {
                    String old = leader;
                    JsonNode lease = awaitHolder(resolved, h -> !h.startsWith(old + "/"));
                    next = service(lease);
                    nextToken = lease.get("token").asLong();
                    assertThat(nextToken).as("the takeover's token").isGreaterThan(leaderToken);
                    grant = grantedMillisAfter(leaderToken);
                    takeover = grant - pausedAt;
                    note("status: " + lease.get("holder").asText() + " leads with token " + nextToken + " (granted "
                            + takeover + " ms after the pause)");
                } else {
                    String old = next;
                    JsonNode lease = awaitHolder(resolved, h -> !h.startsWith(old + "/"));
                    assertThat(lease.get("token").asLong())
                            .as("the second takeover's token")
                            .isGreaterThan(nextToken);
                    second = grantedMillisAfter(nextToken) - killedAt;
                    note("status: " + lease.get("holder").asText() + " leads with token "
                            + lease.get("token").asLong() + " (granted " + second + " ms after the kill)");
                }
                continue;
            }
            if (command.startsWith("docker-compose logs --tail 1 $LEADER")) {
                openCommand = resolved;
                held = awaitOpenWrite(resolved, leaderToken);
                note(leader + " opened a fenced write under token " + leaderToken + " (lease row locked), "
                        + "commits in " + (held.get("until").asLong() - System.currentTimeMillis()) + " ms");
                continue;
            }
            long began = System.currentTimeMillis();
            String out = compose(resolved);
            if (command.startsWith("docker-compose up")) {
                note("up");
            } else if (command.startsWith("docker-compose pause $LEADER")) {
                pausedAt = System.currentTimeMillis();
                assertThat(held).as("an open write was seen before the pause").isNotNull();
                for (int attempt = 2; committedSince(leaderToken, held.get("t").asLong()); attempt++) {
                    note("the held write committed before the pause took hold (the pause returned "
                            + (pausedAt - held.get("until").asLong()) + " ms after its commit time): unpause, again");
                    assertThat(attempt)
                            .as("attempts to freeze the leader inside an open write")
                            .isLessThanOrEqualTo(5);
                    compose("docker-compose unpause " + leader);
                    held = awaitOpenWrite(openCommand, leaderToken);
                    began = System.currentTimeMillis();
                    compose(resolved);
                    pausedAt = System.currentTimeMillis();
                }
                note("paused " + leader + " inside its open write (not committed on the database; the command "
                        + "took " + (pausedAt - began) + " ms and returned "
                        + (held.get("until").asLong() - pausedAt)
                        + " ms before the write's commit time)");
            } else if (command.startsWith("docker-compose unpause $LEADER")) {
                unpausedAt = began;
                note("unpaused " + leader + " (the command took " + (System.currentTimeMillis() - began) + " ms)");
            } else if (command.startsWith("docker-compose kill $NEXT")) {
                killedAt = System.currentTimeMillis();
                note("killed " + next);
            } else if (command.startsWith("docker-compose logs postgres")) {
                long ended = awaitEndedTransaction(resolved, out, held.get("t").asLong());
                note("PostgreSQL had ended the frozen write's transaction " + (ended - pausedAt)
                        + " ms after the pause, " + (grant - ended) + " ms before the takeover's grant");
                assertThat(ended)
                        .as("the frozen transaction ended before the successor's grant")
                        .isLessThan(grant);
            } else if (command.startsWith("docker-compose logs $LEADER")) {
                long until = System.currentTimeMillis() + 20_000;
                while (!(theOldLeaderStoodBy(out, leaderToken, unpausedAt) && heldWrite(out, held) != null)
                        && System.currentTimeMillis() < until) {
                    Thread.sleep(500);
                    out = compose(resolved);
                }
                assertThat(theOldLeaderStoodBy(out, leaderToken, unpausedAt))
                        .as("the old leader reports the revocation of token %d:\n%s", leaderToken, out)
                        .isTrue();
                JsonNode late = heldWrite(out, held);
                assertThat(late)
                        .as("the outcome of the write held across the pause:\n%s", out)
                        .isNotNull();
                assertThat(late.get("token").asLong()).isEqualTo(leaderToken);
                assertThat(late.get("start").asLong())
                        .as("begun before the pause")
                        .isLessThan(pausedAt);
                assertThat(late.get("t").asLong())
                        .as("ended after the unpause began")
                        .isGreaterThanOrEqualTo(unpausedAt);
                assertThat(late.get("result").asText())
                        .as("the late write %s", late)
                        .isIn("rejected", "error");
                note("late write under token " + leaderToken + " (begun before the pause) refused "
                        + (late.get("t").asLong() - unpausedAt) + " ms after the unpause began: "
                        + late.get("result").asText() + ", "
                        + late.get("reason").asText());
                note("old leader " + leader + " revoked token " + leaderToken
                        + " and stands by; no write under that token accepted after the unpause");
            } else if (command.startsWith("docker-compose exec -T postgres psql")) {
                assertThat(out.trim())
                        .as("writes committed under a token after a higher token was granted")
                        .isEqualTo("0");
                note("database: 0 writes under a token committed after a higher token was granted");
            } else if (command.startsWith("docker-compose run --rm cli history")) {
                assertThat(out).as("history").contains(String.valueOf(leaderToken), String.valueOf(nextToken));
            } else if (command.equals("docker-compose down -v")) {
                note("down");
                assertNothingLeft();
            }
        }
        note(String.format("takeover after pause: %d ms (lease %d ms); after kill: %d ms", takeover, LEASE_MS, second));
        assertThat(takeover).as("takeover after the pause, ms").isBetween(0L, LEASE_MS + 10_000);
        assertThat(second).as("takeover after the kill, ms").isBetween(0L, LEASE_MS + 10_000);
    }

    /**
     * Whether the old leader's JSON lines show that it stepped down (a {@code revoked} event for its token), and
     * that no write under the stale token was accepted once it woke up (a write it had in flight is refused).
     */
    private boolean theOldLeaderStoodBy(String logs, long staleToken, long unpausedAt) throws IOException {
        boolean revoked = false;
        for (String line : logs.split("\n")) {
            int brace = line.indexOf('{');
            if (brace < 0) {
                continue;
            }
            JsonNode e = JSON.readTree(line.substring(brace));
            if (e.path("token").asLong() != staleToken) {
                continue;
            }
            String event = e.path("event").asText();
            if (event.equals("write") && e.path("t").asLong() >= unpausedAt) {
                assertThat(e.path("result").asText())
                        .as("late write under stale token %d: %s", staleToken, line)
                        .isNotEqualTo("accepted");
            }
            revoked |= event.equals("revoked");
        }
        return revoked;
    }

    /**
     * Reads the leader's last log line until it is an {@code open} write under {@code token} with at least
     * {@link #PAUSE_BUDGET_MS} left before its commit.
     */
    private JsonNode awaitOpenWrite(String command, long token) throws Exception {
        long until = System.currentTimeMillis() + 120_000;
        String last = "";
        while (System.currentTimeMillis() < until) {
            last = compose(command);
            String[] lines = last.split("\n");
            String line = lines[lines.length - 1];
            int brace = line.indexOf('{');
            if (brace >= 0 && line.endsWith("}")) {
                JsonNode e = JSON.readTree(line.substring(brace));
                if (e.path("event").asText().equals("open")
                        && e.path("token").asLong() == token
                        && e.path("until").asLong() - System.currentTimeMillis() >= PAUSE_BUDGET_MS) {
                    return e;
                }
            }
            Thread.sleep(100);
        }
        throw new AssertionError(
                "no open write with " + PAUSE_BUDGET_MS + " ms left within 120 s; last `" + command + "`:\n" + last);
    }

    /**
     * When PostgreSQL (its log line's own time, epoch milliseconds) terminated a session for the fence's idle or
     * transaction bound, after {@code since}.
     */
    private long awaitEndedTransaction(String command, String out, long since) throws Exception {
        DateTimeFormatter format = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss.SSS z");
        long until = System.currentTimeMillis() + 30_000;
        while (true) {
            Matcher m = ENDED.matcher(out);
            while (m.find()) {
                long at = ZonedDateTime.parse(m.group(1), format).toInstant().toEpochMilli();
                if (at >= since) {
                    return at;
                }
            }
            assertThat(System.currentTimeMillis())
                    .as("PostgreSQL's log names the ended transaction:\n%s", out)
                    .isLessThan(until);
            Thread.sleep(500);
            out = compose(command);
        }
    }

    /** The outcome line of the held write: the {@code write} event that began when {@code open} did. */
    private static JsonNode heldWrite(String logs, JsonNode open) throws IOException {
        for (String line : logs.split("\n")) {
            int brace = line.indexOf('{');
            if (brace >= 0) {
                JsonNode e = JSON.readTree(line.substring(brace));
                if (e.path("event").asText().equals("write")
                        && e.path("start").asLong() == open.get("start").asLong()
                        && e.path("holder").asText().equals(open.get("holder").asText())) {
                    return e;
                }
            }
        }
        return null;
    }

    /** Whether a write under {@code token} committed on the database at or after {@code sinceMillis}. */
    private boolean committedSince(long token, long sinceMillis) throws SQLException {
        try (Connection c = DriverManager.getConnection(url());
                PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM app.fenced_counter_log "
                        + "WHERE token = ? AND at >= to_timestamp(? / 1000.0)")) {
            ps.setLong(1, token);
            ps.setLong(2, sinceMillis);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1) > 0;
            }
        }
    }

    private String url() {
        return "jdbc:postgresql://127.0.0.1:" + port + "/pglease?user=pglease&password=pglease";
    }

    /** Milliseconds since the epoch on the database clock at which the first token above {@code token} was granted. */
    private long grantedMillisAfter(long token) throws SQLException {
        try (Connection c = DriverManager.getConnection(url());
                PreparedStatement ps = c.prepareStatement("SELECT (extract(epoch FROM min(at)) * 1000)::bigint "
                        + "FROM pglease.lease_events WHERE name = 'payments' AND token > ?")) {
            ps.setLong(1, token);
            try (ResultSet rs = ps.executeQuery()) {
                assertThat(rs.next()).isTrue();
                return rs.getLong(1);
            }
        }
    }

    private JsonNode awaitHolder(String command, java.util.function.Predicate<String> accept) throws Exception {
        long until = System.currentTimeMillis() + 180_000;
        String last = "";
        while (System.currentTimeMillis() < until) {
            DockerEngine.Result r = composeResult(command, 120);
            last = r.out();
            int bracket = last.indexOf('[');
            if (r.ok() && bracket >= 0) {
                for (JsonNode lease : JSON.readTree(last.substring(bracket))) {
                    String holder = lease.path("holder").asText("");
                    if (lease.path("held").asBoolean() && !holder.isEmpty() && accept.test(holder)) {
                        return lease;
                    }
                }
            }
            Thread.sleep(500);
        }
        throw new AssertionError("no expected holder within 180 s; last `" + command + "`:\n" + last + "\nnode logs:\n"
                + composeResult("docker-compose logs --tail 20 node1 node2 node3", 60)
                        .out());
    }

    private static String service(JsonNode lease) {
        return lease.get("holder").asText().split("/")[0];
    }

    private void note(String what) {
        timeline.add(String.format("%7.1f s  %s", (System.currentTimeMillis() - t0) / 1000.0, what));
    }

    private static String jarName() throws IOException {
        String pom = Files.readString(Path.of("pom.xml"));
        Matcher m = Pattern.compile("<artifactId>([^<]+)</artifactId>\\s*<version>([^<]+)</version>")
                .matcher(pom);
        assertThat(m.find()).isTrue();
        return m.group(1) + "-" + m.group(2) + "-all.jar";
    }

    private String compose(String command) {
        DockerEngine.Result r = composeResult(command, 300);
        assertThat(r.ok()).as("`%s` failed:\n%s", command, r.out()).isTrue();
        return r.out();
    }

    private DockerEngine.Result composeResult(String command, long timeoutSeconds) {
        return DockerEngine.run(List.of("sh", "-c", command), timeoutSeconds, env);
    }

    private void assertNothingLeft() {
        String label = "label=com.docker.compose.project=" + project;
        for (List<String> list : List.of(
                List.of("docker", "ps", "-aq", "--filter", label),
                List.of("docker", "network", "ls", "-q", "--filter", label),
                List.of("docker", "volume", "ls", "-q", "--filter", label))) {
            DockerEngine.Result r = DockerEngine.run(list, 30, Map.of());
            assertThat(r.ok()).as(String.join(" ", list)).isTrue();
            assertThat(r.out().trim())
                    .as("left behind by down: " + String.join(" ", list))
                    .isEmpty();
        }
    }

    /** The timeline, also of a failed run; whatever it left: removed, so nothing outlives the test. */
    @AfterEach
    void cleanUp() {
        System.out.println(String.join("\n", timeline));
        DockerEngine.run(List.of("docker-compose", "down", "-v", "--remove-orphans", "-t", "1"), 120, env);
    }
}
