package dev.pglease.security;

import static dev.pglease.testkit.Lane.PGBOUNCER_TRANSACTION;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.Elector;
import dev.pglease.ForwardFence;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseLock;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.testkit.NotInLane;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Lease names, holder labels, fence resources and schema names an attacker (or a careless caller) might pass: they
 * are stored verbatim, or rejected with an error that names the rule. Never interpreted as SQL.
 */
@Tag("security")
class HostileInputTest {

    /** Stored exactly as given. */
    static final List<String> VERBATIM = List.of(
            "it's",
            "say \"hello\"",
            "x'; DROP TABLE leases; --",
            "a;b;c",
            "back\\slash \\u0000 \\n",
            "$$dollar$$ $q$quoted$q$",
            "%s %n {} ${flyway:defaultSchema}",
            "{\"name\":\"forged\",\"holder\":null}",
            "rocket 🚀 flag 🇳🇴 snowman ☃",
            "עברית שלום",
            "مرحبا بالعالم",
            "mixed עברית and English",
            "e\u0301 combining",
            "🚀".repeat(200),
            "n".repeat(200));

    private static String schema;
    private static String candidate;

    static final LeaderListener QUIET = new LeaderListener() {
        @Override
        public void onElected(Leadership l) {}

        @Override
        public void onRevoked(Leadership l) {}
    };

    @BeforeAll
    static void setUp() {
        schema = TestDatabase.freshSchema();
        candidate =
                Users.create(schema + "_app", PgLease.Roles.defaultsFor(schema).candidate());
    }

    static LeaseConfig.Builder config() {
        return LeaseConfig.builder()
                .schema(schema)
                .leaseDuration(Duration.ofSeconds(20))
                .renewDeadline(Duration.ofSeconds(12))
                .retryPeriod(Duration.ofMillis(500));
    }

    @Test
    void hostileLeaseNamesAreStoredVerbatim() throws Exception {
        try (PgLease pglease = PgLease.create(
                Users.as(candidate), config().holderLabel("names").build())) {
            List<Elector> electors = new ArrayList<>();
            try {
                for (String name : VERBATIM) {
                    electors.add(pglease.elector(name, QUIET));
                }
                for (Elector e : electors) {
                    String name = e.leaseName();
                    Leadership l = e.awaitLeadership(Duration.ofSeconds(10))
                            .orElseThrow(() -> new AssertionError("no leadership of " + name));
                    assertThat(pglease.leader(name)).as(name).get().satisfies(i -> {
                        assertThat(i.holder()).isEqualTo(pglease.holderId());
                        assertThat(i.token()).isEqualTo(l.token());
                        assertThat(i.leaseName()).isEqualTo(name);
                    });
                }
            } finally {
                electors.forEach(Elector::close);
            }
        }
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement(
                        "SELECT string_agg(kind, ',' ORDER BY id) FROM " + schema + ".lease_events WHERE name = ?");
                PreparedStatement all = c.prepareStatement("SELECT name FROM " + schema + ".lease_status")) {
            for (String name : VERBATIM) {
                ps.setString(1, name);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    assertThat(rs.getString(1)).as("history of %s", name).isEqualTo("acquired,released");
                }
            }
            List<String> stored = new ArrayList<>();
            try (ResultSet rs = all.executeQuery()) {
                while (rs.next()) {
                    stored.add(rs.getString(1));
                }
            }
            assertThat(stored).containsAll(VERBATIM);
        }
    }

    @Test
    void hostileHolderLabelsAreStoredVerbatim() throws Exception {
        String lease = "labels-" + System.nanoTime();
        for (String label : List.of("ops's \"box\"; DROP TABLE leases; --", "🚀 عامل ١", "x".repeat(200))) {
            try (PgLease pglease = PgLease.create(
                            Users.as(candidate), config().holderLabel(label).build());
                    Elector elector = pglease.elector(lease, QUIET)) {
                Leadership l = elector.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
                assertThat(l.holder()).isEqualTo(pglease.holderId()).startsWith(label + "/");
                assertThat(pglease.leader(lease))
                        .get()
                        .extracting(i -> i.holder())
                        .isEqualTo(pglease.holderId());
                try (Connection c = TestDatabase.dataSource().getConnection();
                        PreparedStatement ps = c.prepareStatement(
                                "SELECT holder FROM " + schema + ".lease_events WHERE name = ? AND token = ?")) {
                    ps.setString(1, lease);
                    ps.setLong(2, l.token());
                    try (ResultSet rs = ps.executeQuery()) {
                        assertThat(rs.next()).isTrue();
                        assertThat(rs.getString(1)).isEqualTo(pglease.holderId());
                    }
                }
            }
        }
    }

    @Test
    @NotInLane(
            value = PGBOUNCER_TRANSACTION,
            because = "a standby is woken by a notification only where it can LISTEN: behind a transaction "
                    + "pooler it polls every retry period")
    void aStandbyIsWokenByTheNotificationOfAHostileName() throws Exception {
        String lease = "wake \"}\\\", 'x'; 🚀 עברית " + System.nanoTime();
        LeaseConfig slow = config().leaseDuration(Duration.ofSeconds(60))
                .renewDeadline(Duration.ofSeconds(40))
                .retryPeriod(Duration.ofSeconds(20))
                .build();
        try (PgLease a = PgLease.create(Users.as(candidate), slow);
                PgLease b = PgLease.create(Users.as(candidate), slow)) {
            Elector leader = a.elector(lease, QUIET);
            assertThat(leader.awaitLeadership(Duration.ofSeconds(10))).isPresent();
            try (Elector standby = b.elector(lease, QUIET)) {
                Thread.sleep(500); // denied once; its next attempt is up to 20 s away unless a notification wakes it
                assertThat(standby.isLeader()).isFalse();
                long start = System.nanoTime();
                leader.close();
                assertThat(standby.awaitLeadership(Duration.ofSeconds(5)))
                        .as("woken by the NOTIFY of the release, not by its retry period")
                        .isPresent();
                assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
                assertThat(b.leader(lease)).get().extracting(i -> i.holder()).isEqualTo(b.holderId());
            }
        }
    }

    @Test
    void invalidLeaseNamesAreRejectedWithTheRule() throws Exception {
        try (PgLease pglease = PgLease.create(
                Users.as(candidate), config().holderLabel("rejects").build())) {
            String[][] cases = {
                {"", "must not be empty or blank"},
                {"   ", "must not be empty or blank"},
                {"nul\u0000byte", "control character U+0000 at index 3"},
                {"new\nline", "control character U+000A"},
                {"tab\there", "control character U+0009"},
                {"del\u007f", "control character U+007F"},
                {"c1\u0085", "control character U+0085"},
                {"\u202Egnp.exe", "direction-changing character U+202E"},
                {"isolate\u2066x\u2069", "direction-changing character U+2066"},
                {"\u200bzero-width space", "invisible or direction-changing character U+200B"},
                {"pay\u200dments", "invisible or direction-changing character U+200D"},
                {"n".repeat(201), "201 characters long, the maximum is 200"},
                {"🚀".repeat(201), "201 characters long, the maximum is 200"},
                {"half \uD83D surrogate", "unpaired surrogate"},
            };
            for (String[] c : cases) {
                for (Throwable t : new Throwable[] {
                    catchThrowable(() -> pglease.elector(c[0], QUIET)), catchThrowable(() -> pglease.leader(c[0]))
                }) {
                    assertThat(t)
                            .as("lease name %s", c[0])
                            .isInstanceOf(IllegalArgumentException.class)
                            .hasMessageStartingWith("lease name")
                            .hasMessageContaining(c[1]);
                    assertThat(t.getMessage())
                            .as("the message shows no raw control characters")
                            .doesNotContainPattern("[\\p{Cntrl}\u202A-\u202E\u2066-\u2069]");
                }
            }
            assertThatThrownBy(() -> pglease.elector(null, QUIET)).hasMessage("lease name must not be null");
        }
    }

    @Test
    void invalidHolderLabelsAreRejectedWithTheRule() {
        String[][] cases = {
            {"", "must not be empty or blank"},
            {"a\u0000b", "control character U+0000"},
            {"line\r\nbreak", "control character U+000D"},
            {"\u202Dspoof", "direction-changing character U+202D"},
            {"x".repeat(201), "the maximum is 200"},
        };
        for (String[] c : cases) {
            assertThatThrownBy(() -> config().holderLabel(c[0]).build())
                    .as("label %s", c[0])
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageStartingWith("holder label")
                    .hasMessageContaining(c[1]);
        }
    }

    @Test
    void schemaNamesAreValidatedIdentifiers() throws Exception {
        String[] bad = {
            "pglease; DROP SCHEMA public CASCADE",
            "Pglease",
            "\"pglease\"",
            "pg_catalog",
            "a-b",
            "a b",
            "schéma",
            "1abc",
            "",
            "x".repeat(49),
            "a.b",
            "pglease\u0000"
        };
        for (String s : bad) {
            assertThatThrownBy(() -> LeaseConfig.builder().schema(s).build())
                    .as("schema %s", s)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("is not allowed: use 1 to 48 characters a-z, 0-9 and _");
            assertThatThrownBy(() -> PgLease.migrate(TestDatabase.dataSource(), s))
                    .as("migrate %s", s)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("is not allowed");
        }
        assertThatThrownBy(() -> LeaseConfig.builder().schema(null).build()).hasMessage("schema must not be null");
        assertThat(TestDatabase.dataSource()
                        .getConnection()
                        .createStatement()
                        .executeQuery("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pglease;%'"))
                .satisfies(rs -> {
                    rs.next();
                    assertThat(rs.getInt(1)).isZero();
                });
        for (String table : new String[] {"fences; DROP TABLE x", "a.b.c", "Fences", "a..b"}) {
            assertThatThrownBy(() -> new ForwardFence(table))
                    .as("table %s", table)
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("is not allowed");
        }
    }

    @Test
    void hostileFenceResourcesAreStoredVerbatim() throws Exception {
        try (PgLease pglease = PgLease.create(
                Users.as(candidate), config().holderLabel("fences").build())) {
            LeaseLock lock = pglease.tryLock("fences", Duration.ofMinutes(1)).orElseThrow();
            for (String resource : VERBATIM) {
                Integer done = pglease.forwardFence().inTransaction(Users.as(candidate), resource, lock, c -> 1);
                assertThat(done).isEqualTo(1);
                try (Connection c = Users.as(candidate).getConnection()) {
                    assertThat(pglease.forwardFence().current(c, resource)).hasValue(lock.token());
                }
            }
            assertThatThrownBy(
                            () -> pglease.forwardFence().inTransaction(Users.as(candidate), "nul\u0000", lock, c -> 1))
                    .isInstanceOf(IllegalArgumentException.class)
                    .hasMessageContaining("control character U+0000");
        }
    }

    @Test
    void theDatabaseRefusesControlCharactersEvenFromTheOwner() {
        for (String name : new String[] {"new\nline", "bell\u0007"}) {
            Throwable t = catchThrowable(() -> {
                try (Connection c = TestDatabase.dataSource().getConnection();
                        PreparedStatement ps = c.prepareStatement("INSERT INTO " + schema + ".leases (name, holder, "
                                + "token, expires_at) VALUES (?, 'h', 1, clock_timestamp())")) {
                    ps.setString(1, name);
                    ps.executeUpdate();
                }
            });
            assertThat(t).isInstanceOf(SQLException.class).hasMessageContaining("leases_name_valid");
            assertThat(((SQLException) t).getSQLState()).isEqualTo("23514");
        }
    }
}
