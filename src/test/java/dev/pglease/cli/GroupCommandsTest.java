package dev.pglease.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pglease.GroupListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseGroup;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The command line on lease groups: {@code status --group} (members and shard owners), {@code handoff --group
 * --shard} (one shard moves to another member at once) and {@code watch --group} (shard changes and member joins and
 * leaves), run in-process against the test database.
 */
@Timeout(value = 90, unit = TimeUnit.SECONDS)
class GroupCommandsTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final GroupListener NOTHING = new GroupListener() {
        @Override
        public void onAssigned(int shard, Leadership leadership) {}

        @Override
        public void onRevoked(int shard, Leadership leadership) {}
    };

    private static String schema;
    private final List<PgLease> opened = new ArrayList<>();

    record Result(int code, String out, String err) {}

    @BeforeAll
    static void setUp() {
        schema = TestDatabase.freshSchema();
    }

    @AfterEach
    void closeAll() {
        opened.forEach(PgLease::close);
    }

    private LeaseGroup member(String label, String group, int shards) {
        PgLease p = PgLease.create(
                TestDatabase.dataSource(),
                LeaseConfig.builder()
                        .schema(schema)
                        .holderLabel(label)
                        .leaseDuration(Duration.ofMillis(1500))
                        .renewDeadline(Duration.ofMillis(1000))
                        .retryPeriod(Duration.ofMillis(250))
                        .build());
        opened.add(p);
        return p.group(group, shards, NOTHING);
    }

    private static String holder(LeaseGroup g) {
        return g.leadership(g.ownedShards().first()).orElseThrow().holder();
    }

    static Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        picocli.CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int code = cl.execute(withDb(args));
        return new Result(code, out.toString(), err.toString());
    }

    private static String[] withDb(String... args) {
        List<String> all = new ArrayList<>(List.of(args));
        all.addAll(List.of("--jdbc-url", TestDatabase.jdbcUrl(), "--schema", schema));
        return all.toArray(String[]::new);
    }

    @Test
    void statusGroupShowsTheMembersAndTheOwnerOfEveryShard() throws Exception {
        String group = "status-" + System.nanoTime();
        LeaseGroup a = member("a", group, 6);
        LeaseGroup b = member("b", group, 6);
        await("3 each", () -> a.ownedShards().size() == 3 && b.ownedShards().size() == 3);

        Result table = run("status", "--group", group);
        assertThat(table.code()).as(table.err()).isZero();
        assertThat(table.out())
                .contains("group " + group + ": 6 shards, 6 held, 2 live members")
                .contains("MEMBER", "WEIGHT", "PRIORITY", "LIVE", "SHARDS", "REMAINING", "JOINED")
                .contains("SHARD", "OWNER", "TOKEN", "TERM.COUNTER", "HELD");
        String aRow = table.out()
                .lines()
                .filter(l -> l.startsWith(holder(a)))
                .findFirst()
                .orElseThrow();
        assertThat(aRow).contains(" yes ", " 3 ");
        int shard = a.ownedShards().first();
        assertThat(table.out().lines())
                .anySatisfy(l -> assertThat(l).startsWith(shard + " ").contains(holder(a), "yes"));

        Result json = run("status", "--group", group, "--json");
        assertThat(json.code()).isZero();
        JsonNode status = JSON.readTree(json.out());
        assertThat(status.path("group").asText()).isEqualTo(group);
        assertThat(status.path("shards").asInt()).isEqualTo(6);
        assertThat(status.path("live_members").asInt()).isEqualTo(2);
        assertThat(status.path("members")).hasSize(2);
        assertThat(status.path("shard_owners")).hasSize(6);
        assertThat(status.path("shard_owners").path(shard).path("owner").asText())
                .isEqualTo(holder(a));
        assertThat(status.path("shard_owners")
                        .path(shard)
                        .path("owner_is_member")
                        .asBoolean())
                .isTrue();
        assertLowerSnakeCase(status);

        Result unknown = run("status", "--group", "no-such-group");
        assertThat(unknown.code()).isEqualTo(ExitCodes.FAILED);
        assertThat(unknown.err()).contains("no lease group named no-such-group");
        assertThat(run("status", "some-lease", "--group", group).code()).isEqualTo(ExitCodes.USAGE);
    }

    @Test
    void handoffOfOneShardMovesItToAnotherMemberAtOnce() throws Exception {
        String group = "handoff-" + System.nanoTime();
        LeaseGroup a = member("a", group, 4);
        LeaseGroup b = member("b", group, 4);
        await("2 each", () -> a.ownedShards().size() == 2 && b.ownedShards().size() == 2);
        int shard = a.ownedShards().first();
        long token = a.leadership(shard).orElseThrow().token();

        long start = System.nanoTime();
        Result moved = run("handoff", "--group", group, "--shard", String.valueOf(shard), "--to", holder(b), "--json");
        assertThat(moved.code()).as(moved.err()).isZero();
        await("the other member owns it", () -> b.ownedShards().contains(shard));
        System.out.printf(
                "pglease handoff --group: shard owned by the other member %d ms after the command started%n",
                (System.nanoTime() - start) / 1_000_000);
        @SuppressWarnings("unchecked")
        Map<String, Object> out = JSON.readValue(moved.out(), Map.class);
        assertThat(out)
                .containsEntry("lease", group + "/" + shard)
                .containsEntry("group", group)
                .containsEntry("shard", shard)
                .containsEntry("action", "handoff")
                .containsEntry("previous_holder", holder(a))
                .containsEntry("to_prefix", holder(b));
        assertThat(((Number) out.get("previous_token")).longValue()).isEqualTo(token);
        await("balanced again", () -> balanced(group, a, b));

        int other = b.ownedShards().first();
        Result text = run("handoff", "--group", group, "--shard", String.valueOf(other));
        assertThat(text.code()).as(text.err()).isZero();
        assertThat(text.out()).contains("handed off shard " + other + " of group " + group, "another member takes it");
        // the receiver was at its share, so it gives one of its shards back: wait for that move too (in the database
        // as well as in both members' view: a member that lost a shard believes it owns it until its next renewal)
        await("balanced after the second hand-off", () -> balanced(group, a, b));

        Result nobody = run("handoff", "--group", group, "--shard", "0", "--to", "node9/");
        assertThat(nobody.code()).isEqualTo(ExitCodes.FAILED);
        assertThat(nobody.err()).contains("node9/", "no live member");
        Result range = run("handoff", "--group", group, "--shard", "4");
        assertThat(range.code()).isEqualTo(ExitCodes.FAILED);
        assertThat(range.err()).contains("shards 0 to 3, got 4");
        assertThat(run("handoff", "--group", group).code()).isEqualTo(ExitCodes.USAGE);
        assertThat(run("handoff", group + "/0", "--group", group, "--shard", "0")
                        .code())
                .isEqualTo(ExitCodes.USAGE);
    }

    @Test
    void watchGroupPrintsShardChangesAndMembersJoiningAndLeaving() throws Exception {
        String group = "watch-" + System.nanoTime();
        LeaseGroup a = member("a", group, 2);
        await("both shards", () -> a.ownedShards().size() == 2);
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        picocli.CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        CompletableFuture<Integer> watching = CompletableFuture.supplyAsync(
                () -> cl.execute(withDb("watch", "--group", group, "--json", "--count", "3", "--for", "40s")));
        await("watch listens", () -> err.toString().contains("(LISTEN"));
        assertThat(err.toString()).contains("watching lease group " + group);

        LeaseGroup b = member("b", group, 2); // joins: one shard moves (released, acquired)
        await("one each", () -> a.ownedShards().size() == 1 && b.ownedShards().size() == 1);
        assertThat(watching.get(30, TimeUnit.SECONDS)).as(err.toString()).isZero();
        List<JsonNode> events = new ArrayList<>();
        for (String line : out.toString().lines().toList()) {
            events.add(JSON.readTree(line));
        }
        assertThat(events).extracting(e -> e.path("kind").asText()).contains("member_joined", "released", "acquired");
        JsonNode joined = events.stream()
                .filter(e -> e.path("kind").asText().equals("member_joined"))
                .findFirst()
                .orElseThrow();
        assertThat(joined.path("member").asText()).isEqualTo(holder(b));
        assertThat(joined.path("group").asText()).isEqualTo(group);
        JsonNode acquired = events.stream()
                .filter(e -> e.path("kind").asText().equals("acquired"))
                .findFirst()
                .orElseThrow();
        int moved = b.ownedShards().first();
        assertThat(acquired.path("lease").asText()).isEqualTo(group + "/" + moved);
        assertThat(acquired.path("shard").asInt()).isEqualTo(moved);
        assertThat(acquired.path("holder").asText()).isEqualTo(holder(b));
        events.forEach(GroupCommandsTest::assertLowerSnakeCase);

        // text mode: the status first, then a leave
        StringWriter textOut = new StringWriter();
        picocli.CommandLine text = Main.commandLine();
        text.setOut(new PrintWriter(textOut, true));
        text.setErr(new PrintWriter(new StringWriter(), true));
        CompletableFuture<Integer> following = CompletableFuture.supplyAsync(
                () -> text.execute(withDb("watch", "--group", group, "--for", "30s", "--count", "3")));
        await("status printed", () -> textOut.toString().contains("SHARD"));
        String leaver = holder(b);
        b.close(); // leaves: its member row goes, its shard is released and taken (three events)
        int code;
        try {
            code = following.get(30, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new AssertionError("watch did not end; it printed:\n" + textOut, e);
        }
        assertThat(code).isZero();
        assertThat(textOut.toString())
                .contains("group " + group + ": 2 shards", "MEMBER", "SHARD")
                .contains("member_left", "member " + leaver, "released");
    }

    private static void assertLowerSnakeCase(JsonNode node) {
        Set<String> keys = new TreeSet<>();
        collect(node, keys);
        assertThat(keys).allSatisfy(k -> assertThat(k).matches("[a-z][a-z0-9]*(_[a-z0-9]+)*"));
    }

    private static void collect(JsonNode node, Set<String> keys) {
        node.fields().forEachRemaining(e -> {
            keys.add(e.getKey());
            collect(e.getValue(), keys);
        });
        node.elements().forEachRemaining(e -> collect(e, keys));
    }

    /** Each member owns two shards, in its own view and in the database, where every shard is held unexpired. */
    private static boolean balanced(String group, LeaseGroup a, LeaseGroup b) {
        if (a.ownedShards().size() != 2 || b.ownedShards().size() != 2) {
            return false;
        }
        Map<String, Set<Integer>> held = new java.util.HashMap<>();
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT name, holder FROM " + schema
                        + ".leases WHERE name LIKE ? AND holder IS NOT NULL AND expires_at > clock_timestamp()")) {
            ps.setString(1, group + "/%");
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    String name = rs.getString(1);
                    held.computeIfAbsent(rs.getString(2), h -> new TreeSet<>())
                            .add(Integer.parseInt(name.substring(name.lastIndexOf('/') + 1)));
                }
            }
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
        return a.ownedShards().equals(held.get(holder(a))) && b.ownedShards().equals(held.get(holder(b)));
    }

    private static void await(String what, BooleanSupplier condition) throws InterruptedException {
        long end = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - end > 0) {
                throw new AssertionError("timed out waiting for: " + what);
            }
            Thread.sleep(10);
        }
    }
}
