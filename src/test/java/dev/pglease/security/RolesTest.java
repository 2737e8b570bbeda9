package dev.pglease.security;

import static dev.pglease.security.Users.denied;
import static dev.pglease.security.Users.query;
import static dev.pglease.security.Users.run;
import static dev.pglease.testkit.Lane.PGBOUNCER_TRANSACTION;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.Elector;
import dev.pglease.LeaderListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.testkit.NotInLane;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;

/**
 * The roles the migration ships, used the way applications use them: login users that are members of a role. What
 * each role may do works; everything else fails with SQLSTATE 42501.
 */
@Tag("security")
class RolesTest {

    private static String schema;
    private static PgLease.Roles roles;
    private static String candA;
    private static String candB;
    private static String observer;
    private static String operator;
    private static String nobody;
    private static String overGranted;

    @BeforeAll
    static void setUp() {
        schema = TestDatabase.freshSchema();
        roles = PgLease.Roles.defaultsFor(schema);
        candA = Users.create(schema + "_app_a", roles.candidate());
        candB = Users.create(schema + "_app_b", roles.candidate());
        observer = Users.create(schema + "_dash", roles.observer());
        operator = Users.create(schema + "_ops", roles.operator());
        nobody = Users.create(schema + "_nobody");
        // a role that was given far too much by hand: the triggers still hold it to the rules
        overGranted = Users.create(schema + "_over");
        TestDatabase.execute("GRANT USAGE ON SCHEMA " + schema + " TO " + overGranted);
        TestDatabase.execute("GRANT ALL ON ALL TABLES IN SCHEMA " + schema + " TO " + overGranted);
    }

    static LeaseConfig config(String label) {
        return LeaseConfig.builder()
                .schema(schema)
                .holderLabel(label)
                .leaseDuration(Duration.ofSeconds(20))
                .renewDeadline(Duration.ofSeconds(12))
                .retryPeriod(Duration.ofMillis(500))
                .build();
    }

    static final class Events implements LeaderListener {
        final BlockingQueue<String> queue = new LinkedBlockingQueue<>();

        @Override
        public void onElected(Leadership l) {
            queue.add("elected " + l.token());
        }

        @Override
        public void onRevoked(Leadership l) {
            queue.add("revoked " + l.token());
        }

        String next() throws InterruptedException {
            String e = queue.poll(10, TimeUnit.SECONDS);
            assertThat(e).as("a callback within 10 s").isNotNull();
            return e;
        }
    }

    @Test
    void theMigrationCreatesThreeNologinRolesWithDocumentedDefaultNames() throws Exception {
        assertThat(roles.candidate()).isEqualTo(schema + "_candidate");
        assertThat(roles.observer()).isEqualTo(schema + "_observer");
        assertThat(roles.operator()).isEqualTo(schema + "_operator");
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps =
                        c.prepareStatement("SELECT rolcanlogin, rolsuper, shobj_description(oid, 'pg_authid')"
                                + " FROM pg_roles WHERE rolname = ?")) {
            for (String[] r : new String[][] {
                {roles.candidate(), "candidate"}, {roles.observer(), "observer"}, {roles.operator(), "operator"}
            }) {
                ps.setString(1, r[0]);
                try (ResultSet rs = ps.executeQuery()) {
                    assertThat(rs.next()).as("role %s exists", r[0]).isTrue();
                    assertThat(rs.getBoolean(1)).as("%s can log in", r[0]).isFalse();
                    assertThat(rs.getBoolean(2)).isFalse();
                    assertThat(rs.getString(3)).isEqualTo("pglease " + r[1] + " role of schema " + schema);
                }
            }
        }
    }

    @Test
    void roleNamesAreConfigurableAndExistingRolesAreReused() throws Exception {
        String custom = schema + "c";
        String app = custom + "_billing_app";
        TestDatabase.execute("DROP ROLE IF EXISTS " + app);
        TestDatabase.execute("CREATE ROLE " + app + " NOLOGIN"); // exists before: only granted to
        PgLease.Roles names = new PgLease.Roles(app, custom + "_billing_ro", custom + "_billing_ops");
        assertThat(PgLease.migrate(TestDatabase.dataSource(), custom, names)).isEqualTo(migrations());
        String login = Users.create(custom + "_login", app);
        String ro = Users.create(custom + "_ro_login", names.observer());
        run(login, "SELECT * FROM " + custom + ".acquire('custom', 'me', 5000)");
        assertThat(query(ro, "SELECT holder FROM " + custom + ".lease_status WHERE name = 'custom'"))
                .isEqualTo("me");
        denied(ro, "SELECT " + custom + ".force_release('custom')");
        assertThat(query(login, "SELECT count(*) FROM pg_roles WHERE rolname = '" + custom + "_candidate'"))
                .as("no default-named role was created")
                .isEqualTo("0");
    }

    @Test
    void anOwnerWithoutCreateroleIsToldToCreateTheRolesFirst() throws Exception {
        String owned = schema + "o";
        String owner = Users.create(owned + "_owner");
        TestDatabase.execute("GRANT CREATE ON DATABASE " + database() + " TO " + owner);
        assertThatThrownBy(() -> PgLease.migrate(Users.as(owner), owned))
                .isInstanceOfSatisfying(
                        LeaseException.class,
                        e -> assertThat(e.reason()).isEqualTo(LeaseException.Reason.INSUFFICIENT_PRIVILEGE))
                .hasMessageContaining("role " + owned + "_candidate (the candidate role of schema " + owned
                        + ") does not exist and " + owner + " may not create it");
        PgLease.Roles names = PgLease.Roles.defaultsFor(owned);
        for (String role : new String[] {names.candidate(), names.observer(), names.operator()}) {
            TestDatabase.execute("DROP ROLE IF EXISTS " + role);
            TestDatabase.execute("CREATE ROLE " + role + " NOLOGIN");
        }
        assertThat(PgLease.migrate(Users.as(owner), owned))
                .as("the failed migration left nothing behind: all of them go in now")
                .isEqualTo(migrations());
        // a non-superuser owner: its candidates go through the protocol functions, the owner itself may hand-edit
        String app = Users.create(owned + "_app", names.candidate());
        run(app, "SELECT * FROM " + owned + ".acquire('x', 'app', 5000)");
        denied(app, "UPDATE " + owned + ".leases SET holder = 'other', token = token + 1");
        run(owner, "UPDATE " + owned + ".leases SET holder = 'other', token = token + 1");
        denied(app, "DELETE FROM " + owned + ".lease_events");
        run(owner, "DELETE FROM " + owned + ".lease_events");
    }

    private static String database() throws Exception {
        return query(null, "SELECT current_database()");
    }

    @Test
    void instancesSharingOneRoleTrustEachOther() throws Exception {
        // The documented residual risk, pinned: the guard tells database roles apart, not instances of one role.
        String lease = "shared-" + System.nanoTime();
        Events events = new Events();
        try (PgLease pglease = PgLease.create(Users.as(candA), config("a"));
                Elector elector = pglease.elector(lease, events)) {
            long token = elector.awaitLeadership(Duration.ofSeconds(10))
                    .orElseThrow()
                    .token();
            assertThat(events.next()).isEqualTo("elected " + token);
            String holder = pglease.holderId().replace("'", "''");
            assertThat(query(candB, "SELECT " + schema + ".release('" + lease + "', '" + holder + "', " + token + ")"))
                    .as("another login may not release it, even with its holder id and token")
                    .isEqualTo("f");
            assertThat(query(candA, "SELECT " + schema + ".release('" + lease + "', '" + holder + "', " + token + ")"))
                    .as("any instance of the holder's own login may")
                    .isEqualTo("t");
            assertThat(events.next())
                    .as("the holder notices at its next renewal")
                    .isEqualTo("revoked " + token);
            assertThat(query(
                            observer,
                            "SELECT string_agg(kind || ':' || changed_by, ',' ORDER BY id) FROM " + schema
                                    + ".lease_events WHERE name = '" + lease + "' AND token = " + token))
                    .as("and history says who")
                    .isEqualTo("acquired:" + candA + ",released:" + candA);
        }
    }

    @Test
    void invalidRoleNamesAreRejectedBeforeTheDatabaseIsTouched() {
        assertThatThrownBy(() -> new PgLease.Roles("app; DROP ROLE x", "b", "c"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("candidate role \"app; DROP ROLE x\" is not allowed")
                .hasMessageContaining("a-z, 0-9 and _");
        assertThatThrownBy(() -> new PgLease.Roles("a", "Observer", "c")).hasMessageContaining("observer role");
        assertThatThrownBy(() -> new PgLease.Roles("a", "b", "pg_read_all_data"))
                .hasMessageContaining("pg_");
        assertThatThrownBy(() -> new PgLease.Roles("public", "b", "c")).hasMessageContaining("public");
        assertThatThrownBy(() -> new PgLease.Roles("a", "a", "c")).hasMessageContaining("three different roles");
        assertThatThrownBy(() -> new PgLease.Roles("a".repeat(64), "b", "c")).hasMessageContaining("1 to 63");
    }

    @Test
    void aCandidateCampaignsRenewsWritesFencedAndReleases() throws Exception {
        String lease = "cand-" + System.nanoTime();
        Events events = new Events();
        String holder;
        long token;
        try (PgLease pglease = PgLease.create(Users.as(candA), config("a"));
                Elector elector = pglease.elector(lease, events)) {
            holder = pglease.holderId();
            Leadership l = elector.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            token = l.token();
            assertThat(events.next()).isEqualTo("elected " + token);
            assertThat(pglease.leader(lease))
                    .get()
                    .satisfies(i -> assertThat(i.holder()).isEqualTo(holder));
            // fenced write through the lease row lock (FOR SHARE) and the forward fence, in one transaction
            long fenced =
                    pglease.inFencedTransaction(l, c -> pglease.forwardFence().advance(c, "ledger", l));
            assertThat(fenced).isEqualTo(token);
            Integer one = pglease.forwardFence().inTransaction(Users.as(candA), "ledger", l, c -> 1);
            assertThat(one).isEqualTo(1);
            assertThat(query(candA, "SELECT " + schema + ".advance_fence('other', '" + lease + "', " + token + ")"))
                    .isEqualTo("t");
            Thread.sleep(1_200); // two renewals as the candidate
            assertThat(elector.isLeader()).isTrue();
            assertThat(query(
                            observer,
                            "SELECT holder_role FROM " + schema + ".lease_status WHERE name = '" + lease + "'"))
                    .isEqualTo(candA);
        }
        assertThat(events.next()).isEqualTo("revoked " + token);
        try (Connection c = TestDatabase.dataSource().getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT kind, holder, changed_by FROM " + schema
                        + ".lease_events WHERE name = ? ORDER BY id")) {
            ps.setString(1, lease);
            try (ResultSet rs = ps.executeQuery()) {
                assertThat(rs.next()).isTrue();
                assertThat(rs.getString(1) + " " + rs.getString(2) + " " + rs.getString(3))
                        .isEqualTo("acquired " + holder + " " + candA);
                assertThat(rs.next()).isTrue();
                assertThat(rs.getString(1) + " " + rs.getString(3)).isEqualTo("released " + candA);
                assertThat(rs.next()).isFalse();
            }
        }
    }

    @Test
    void aCandidateCanNotEditAnotherHoldersRow() throws Exception {
        String lease = "victim-" + System.nanoTime();
        try (PgLease pglease = PgLease.create(Users.as(candA), config("a"));
                Elector elector = pglease.elector(lease, new Events())) {
            Leadership l = elector.awaitLeadership(Duration.ofSeconds(10)).orElseThrow();
            String where = " WHERE name = '" + lease + "'";
            String table = schema + ".leases";
            String holder = pglease.holderId().replace("'", "''");
            // no direct write at all: take it over, cut it short, extend it, bump its token, rename its holder
            for (String user : new String[] {candB, overGranted}) {
                denied(user, "UPDATE " + table + " SET holder = 'mallory', token = token + 1" + where);
                denied(user, "UPDATE " + table + " SET expires_at = clock_timestamp()" + where);
                denied(user, "UPDATE " + table + " SET expires_at = clock_timestamp() + interval '1 hour'" + where);
                denied(user, "UPDATE " + table + " SET holder = NULL, expires_at = clock_timestamp()" + where);
                denied(user, "UPDATE " + table + " SET holder_role = '" + candB + "'" + where);
                denied(user, "DELETE FROM " + table + where);
                denied(user, "TRUNCATE " + table);
                denied(
                        user,
                        "INSERT INTO " + table + " (name, holder, holder_role, token, expires_at)"
                                + " VALUES ('forged', 'mallory', 'x', 42, clock_timestamp() + interval '1 second')");
            }
            // the protocol functions, with the holder's own id and token, from another login
            assertThat(query(candB, "SELECT granted FROM " + schema + ".acquire('" + lease + "', 'mallory', 5000)"))
                    .isEqualTo("f");
            assertThat(query(
                            candB,
                            "SELECT " + schema + ".renew('" + lease + "', '" + holder + "', " + l.token()
                                    + ", 86400000)"))
                    .isEqualTo("f");
            assertThat(query(
                            candB,
                            "SELECT " + schema + ".release('" + lease + "', '" + holder + "', " + l.token() + ")"))
                    .isEqualTo("f");
            assertThatThrownBy(() -> run(candB, "SELECT " + schema + ".fence('" + lease + "', " + l.token() + ")"))
                    .isInstanceOfSatisfying(
                            java.sql.SQLException.class,
                            e -> assertThat(e.getSQLState()).isEqualTo("PL001"))
                    .hasMessageContaining("held by another login");
            // a label set by hand does not reach the history
            try (Connection c = Users.as(candB).getConnection();
                    Statement st = c.createStatement()) {
                st.execute("SET pglease.event_kind = 'force_released'");
                st.executeQuery("SELECT * FROM " + schema + ".acquire('labelled-" + lease + "', 'mallory', 1000)")
                        .close();
            }
            assertThat(query(
                            observer,
                            "SELECT kind FROM " + schema + ".lease_events WHERE name = 'labelled-" + lease + "'"))
                    .isEqualTo("acquired");
            // nothing changed
            assertThat(pglease.leader(lease)).get().satisfies(i -> {
                assertThat(i.holder()).isEqualTo(pglease.holderId());
                assertThat(i.token()).isEqualTo(l.token());
            });
            assertThat(elector.isLeader()).isTrue();
            assertThat(query(candB, "SELECT count(*) FROM " + schema + ".lease_events WHERE name = '" + lease + "'"))
                    .isEqualTo("1");
        }
    }

    @Test
    void aCandidateMayTakeAnExpiredLeaseAndTheTokenIsTheRulesNotItsOwn() throws Exception {
        String lease = "expired-" + System.nanoTime();
        run(candA, "SELECT * FROM " + schema + ".acquire('" + lease + "', 'a-holder', 50)");
        Thread.sleep(100);
        assertThat(query(candA, "SELECT " + schema + ".renew('" + lease + "', 'a-holder', 1, 3600000)"))
                .as("an expired lease is not renewed")
                .isEqualTo("f");
        assertThat(query(
                        candB,
                        "SELECT token || ' ' || holder FROM " + schema + ".acquire('" + lease + "', 'b-holder', 5000)"))
                .isEqualTo("2 b-holder");
        assertThat(query(
                        candB,
                        "SELECT holder || ' ' || token || ' ' || holder_role FROM " + schema + ".leases WHERE name = '"
                                + lease + "'"))
                .isEqualTo("b-holder 2 " + candB);
    }

    @Test
    void historyIsAppendOnlyForEveryRoleButTheOwner() throws Exception {
        String lease = "history-" + System.nanoTime();
        run(candA, "SELECT * FROM " + schema + ".acquire('" + lease + "', 'h', 5000)");
        String events = schema + ".lease_events";
        for (String user : new String[] {candA, observer, operator, nobody, overGranted}) {
            denied(user, "UPDATE " + events + " SET holder = 'someone else' WHERE name = '" + lease + "'");
            denied(user, "DELETE FROM " + events + " WHERE name = '" + lease + "'");
            denied(user, "TRUNCATE " + events);
            denied(
                    user,
                    "INSERT INTO " + events + " (name, token, holder, kind) VALUES ('" + lease
                            + "', 99, 'forged', 'acquired')");
        }
        assertThat(denied(overGranted, "DELETE FROM " + events).getMessage()).contains("append-only");
        // the owner may prune
        try (Connection c = TestDatabase.dataSource().getConnection();
                Statement s = c.createStatement()) {
            c.setAutoCommit(false);
            assertThat(s.executeUpdate("DELETE FROM " + events + " WHERE name = '" + lease + "'"))
                    .isEqualTo(1);
            c.rollback();
        }
        assertThat(query(observer, "SELECT holder FROM " + events + " WHERE name = '" + lease + "'"))
                .isEqualTo("h");
    }

    @Test
    @NotInLane(
            value = PGBOUNCER_TRANSACTION,
            because = "checks that the handed-off holder has stepped down the moment its successor is "
                    + "elected, which the handoff's notification makes so; behind a transaction pooler (no "
                    + "LISTEN) it steps down at its next renewal, within a retry period")
    void forceReleaseAndHandoffNeedTheOperatorRole() throws Exception {
        String lease = "ops-" + System.nanoTime();
        Events events = new Events();
        try (PgLease pglease = PgLease.create(Users.as(candA), config("a"));
                Elector elector = pglease.elector(lease, events)) {
            long token = elector.awaitLeadership(Duration.ofSeconds(10))
                    .orElseThrow()
                    .token();
            assertThat(events.next()).isEqualTo("elected " + token);
            for (String user : new String[] {candA, candB, observer, nobody, overGranted}) {
                denied(user, "SELECT " + schema + ".force_release('" + lease + "')");
                denied(user, "SELECT " + schema + ".handoff('" + lease + "')");
            }
            denied(operator, "UPDATE " + schema + ".leases SET holder = NULL WHERE name = '" + lease + "'");
            assertThat(query(operator, "SELECT " + schema + ".force_release('" + lease + "')"))
                    .isEqualTo(String.valueOf(token + 1));
            assertThat(events.next()).isEqualTo("revoked " + token);
            long next = elector.awaitLeadership(Duration.ofSeconds(10))
                    .orElseThrow()
                    .token();
            assertThat(next).isEqualTo(token + 2);
            assertThat(events.next()).isEqualTo("elected " + next);
            assertThat(query(operator, "SELECT " + schema + ".handoff('" + lease + "', 'b/')"))
                    .isEqualTo(String.valueOf(next + 1));
            // The old holder steps down on its own when it learns of the handoff (notification or renewal); nothing
            // makes the target wait for that, so the target is started only once it has.
            assertThat(events.next()).isEqualTo("revoked " + next);
            // the handoff target, another role, takes it through the guard; the old holder may not
            try (PgLease b = PgLease.create(Users.as(candB), config("b"));
                    Elector target = b.elector(lease, new Events())) {
                assertThat(target.awaitLeadership(Duration.ofSeconds(10)))
                        .get()
                        .extracting(Leadership::token)
                        .isEqualTo(next + 2);
                assertThat(elector.isLeader()).isFalse();
            }
            assertThat(query(
                            observer,
                            "SELECT string_agg(kind || ':' || changed_by, ',' ORDER BY id) FROM " + schema
                                    + ".lease_events WHERE name = '" + lease + "' AND token <= " + (next + 2)))
                    .isEqualTo("acquired:" + candA + ",force_released:" + operator + ",acquired:" + candA
                            + ",handed_off:" + operator + ",acquired:" + candB + ",released:" + candB);
        }
    }

    @Test
    @NotInLane(
            value = PGBOUNCER_TRANSACTION,
            because = "LISTEN needs a server session of its own, which transaction pooling does not give")
    void anObserverReadsStatusAndHistoryAndWatchesChanges() throws Exception {
        String lease = "watched-" + System.nanoTime();
        try (Connection c = Users.as(observer).getConnection();
                Statement s = c.createStatement()) {
            s.execute("LISTEN \"" + schema + ".leases\"");
            run(candA, "SELECT * FROM " + schema + ".acquire('" + lease + "', 'w', 5000)");
            PGNotification[] n = c.unwrap(PGConnection.class).getNotifications(5_000);
            assertThat(n).isNotNull().isNotEmpty();
            assertThat(n[0].getParameter()).contains("\"name\" : \"" + lease + "\"");
            for (String view : new String[] {"lease_status", "leases", "lease_events", "fences"}) {
                s.executeQuery("SELECT * FROM " + schema + "." + view).close();
            }
        }
        assertThat(query(observer, "SELECT held FROM " + schema + ".lease_status WHERE name = '" + lease + "'"))
                .isEqualTo("t");
        denied(
                observer,
                "INSERT INTO " + schema + ".leases (name, holder, token, expires_at)"
                        + " VALUES ('o', 'o', 1, clock_timestamp() + interval '5 seconds')");
        denied(observer, "UPDATE " + schema + ".leases SET holder = NULL");
        denied(observer, "SELECT " + schema + ".advance_fence('x', 'y', 1)");
        denied(observer, "SELECT * FROM " + schema + ".acquire('o', 'o', 1000)");
        denied(observer, "SELECT 1 FROM " + schema + ".leases FOR SHARE");
        denied(nobody, "SELECT * FROM " + schema + ".lease_status");
    }

    @Test
    void noRoleCanCreateObjectsInTheSchema() throws Exception {
        for (String user : new String[] {candA, observer, operator, nobody, overGranted}) {
            denied(user, "CREATE TABLE " + schema + ".intruder (x int)");
            denied(user, "CREATE VIEW " + schema + ".intruder_v AS SELECT 1");
            denied(user, "CREATE FUNCTION " + schema + ".leases_guard(x int) RETURNS int LANGUAGE sql AS 'SELECT 1'");
        }
    }

    @Test
    void fencesOnlyMoveForwardForEveryRoleButTheOwner() throws Exception {
        String fences = schema + ".fences";
        String resource = "res-" + System.nanoTime();
        String lease = "fenced-" + resource;
        String first = query(candA, "SELECT token FROM " + schema + ".acquire('" + lease + "', 'h', 60000)");
        run(candA, "SELECT " + schema + ".release('" + lease + "', 'h', " + first + ")");
        String token = query(candA, "SELECT token FROM " + schema + ".acquire('" + lease + "', 'h2', 60000)");
        assertThat(query(
                        candA,
                        "SELECT " + schema + ".advance_fence('" + resource + "', '" + lease + "', " + token + ")"))
                .isEqualTo("t");
        assertThat(query(
                        candA,
                        "SELECT " + schema + ".advance_fence('" + resource + "', '" + lease + "', " + first + ")"))
                .isEqualTo("f");
        assertThatThrownBy(() -> query(
                        candA,
                        "SELECT " + schema + ".advance_fence('" + resource + "', '" + lease
                                + "', 9223372036854775807)"))
                .hasMessageContaining("has not granted token");
        String where = " WHERE resource = '" + resource + "'";
        denied(candA, "UPDATE " + fences + " SET token = 1" + where);
        denied(candA, "UPDATE " + fences + " SET resource = 'elsewhere'" + where);
        denied(candA, "DELETE FROM " + fences + where);
        denied(overGranted, "UPDATE " + fences + " SET token = 1" + where);
        denied(overGranted, "DELETE FROM " + fences + where);
        denied(overGranted, "TRUNCATE " + fences);
        assertThat(query(observer, "SELECT token FROM " + fences + where)).isEqualTo(token);
    }

    @Test
    void startingWithTooFewRightsNamesTheMissingGrants() {
        assertThatThrownBy(() -> PgLease.create(Users.as(nobody), config("n")))
                .isInstanceOfSatisfying(LeaseException.class, e -> {
                    assertThat(e.reason()).isEqualTo(LeaseException.Reason.INSUFFICIENT_PRIVILEGE);
                    assertThat(e.getMessage())
                            .contains("the database role " + nobody + " lacks USAGE ON SCHEMA " + schema
                                    + ", SELECT ON " + schema + ".leases, EXECUTE ON FUNCTION " + schema
                                    + ".acquire(text, text, bigint, text)")
                            .contains("needs: GRANT " + roles.candidate() + " TO " + nobody + "; (" + roles.candidate()
                                    + " may call " + schema + ".acquire)")
                            .doesNotContain("\n")
                            .doesNotContain("Exception");
                });
        assertThatThrownBy(() -> PgLease.create(Users.as(observer), config("o")))
                .isInstanceOfSatisfying(LeaseException.class, e -> {
                    assertThat(e.reason()).isEqualTo(LeaseException.Reason.INSUFFICIENT_PRIVILEGE);
                    assertThat(e.getMessage())
                            .contains("lacks EXECUTE ON FUNCTION " + schema + ".acquire(text, text, bigint, text), "
                                    + "EXECUTE ON FUNCTION " + schema + ".renew_all(text, text[], bigint[], bigint)")
                            .doesNotContain("USAGE");
                });
    }

    /** How many migrations the schema has (the files in db/migration). */
    private static int migrations() throws java.io.IOException {
        try (java.util.stream.Stream<java.nio.file.Path> files =
                java.nio.file.Files.list(java.nio.file.Path.of("db/migration"))) {
            return (int) files.filter(f -> f.getFileName().toString().matches("[VR]\\w*__.*\\.sql"))
                    .count();
        }
    }
}
