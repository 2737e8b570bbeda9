package dev.pglease.anylang;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.LeaseConfig;
import dev.pglease.LeaseLock;
import dev.pglease.PgLease;
import dev.pglease.Required;
import dev.pglease.TestDatabase;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * A protected table refuses stale and unfenced writes from clients that are not Java: psql and Python (psycopg2)
 * call {@code <schema>.fence(lease, token)} in their own transaction, on whatever connection the test server's URL
 * gives them (in the PgBouncer lanes, a transaction-pooled one). The grant is the Java holder's: the same login
 * fences with the current token and writes; an unfenced write, another login's fence and the old token after the
 * lease moved on write nothing.
 */
@Tag("security")
class ProtectedTableFromOtherClientsTest {

    private static final String LEASE = "payments";
    private static final AtomicInteger VALUES = new AtomicInteger();
    private static String schema;
    private static String table;
    private static Campaigners.Login holderLogin;
    private static Campaigners.Login otherLogin;
    private static PgLease holder;
    private static LeaseLock grant;

    @BeforeAll
    static void setUp() {
        schema = TestDatabase.freshSchema();
        table = Campaigners.protectedCounter(schema, "work", LEASE) + ".fenced_counter_log";
        holderLogin = Campaigners.login(schema, "holder");
        otherLogin = Campaigners.login(schema, "other");
        holder = PgLease.create(
                holderLogin.dataSource(),
                LeaseConfig.builder().schema(schema).holderLabel("java").build());
        grant = holder.tryLock(LEASE, Duration.ofMinutes(5)).orElseThrow();
    }

    @AfterAll
    static void tearDown() {
        if (grant != null) {
            grant.close();
        }
        if (holder != null) {
            holder.close();
        }
    }

    private static String insert(String client, long token, int value) {
        return "INSERT INTO " + table + " (name, token, holder, value) VALUES ('" + client + "', " + token + ", '"
                + client + "', " + value + ")";
    }

    private static String fence(long token) {
        return "SELECT " + schema + ".fence('" + LEASE + "', " + token + ")";
    }

    private static int rows(int value) throws Exception {
        return Integer.parseInt(query("SELECT count(*) FROM " + table + " WHERE value = " + value)
                .trim());
    }

    private static String query(String sql) throws Exception {
        try (var c = TestDatabase.dataSource().getConnection();
                var s = c.createStatement();
                var rs = s.executeQuery(sql)) {
            rs.next();
            return rs.getString(1);
        }
    }

    /** Runs {@code sql} as one psql command (one transaction when it has BEGIN … COMMIT) as {@code login}. */
    private static Outcome psql(Campaigners.Login login, String sql) throws Exception {
        Required.assume(Campaigners.psql().isPresent(), "psql, bash 5 and timeout (Debian's postgresql-client)");
        return run(
                login,
                List.of(
                        "psql",
                        "-X",
                        "-q",
                        "-v",
                        "ON_ERROR_STOP=1",
                        "-v",
                        "VERBOSITY=verbose",
                        "-d",
                        login.conninfo(),
                        "-c",
                        sql));
    }

    /** Runs the statements in one psycopg2 transaction as {@code login}; prints the SQLSTATE of a failure. */
    private static Outcome python(Campaigners.Login login, String... statements) throws Exception {
        Required.assume(Campaigners.python().isPresent(), "python3 with Debian's python3-psycopg2");
        String interpreter = Campaigners.python().orElseThrow().get(0);
        String program = String.join(
                "\n",
                "import sys, psycopg2",
                "conn = psycopg2.connect(sys.argv[1])",
                "try:",
                "    with conn.cursor() as cur:",
                "        for statement in sys.argv[2:]:",
                "            cur.execute(statement)",
                "    conn.commit()",
                "except psycopg2.Error as e:",
                "    conn.rollback()",
                "    print('SQLSTATE', e.pgcode, e.pgerror)",
                "    sys.exit(3)",
                "");
        List<String> command = new ArrayList<>(List.of(interpreter, "-c", program, login.conninfo()));
        command.addAll(List.of(statements));
        return run(login, command);
    }

    private record Outcome(int exit, String output) {}

    private static Outcome run(Campaigners.Login login, List<String> command) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true);
        pb.environment().putAll(Map.of("PGPASSWORD", login.password(), "PGCONNECT_TIMEOUT", "5"));
        Process p = pb.start();
        if (!p.waitFor(60, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IOException(command.get(0) + " did not finish within 60 s");
        }
        return new Outcome(p.exitValue(), new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8));
    }

    @Test
    void psqlFencedWithTheCurrentTokenByTheHoldersLoginWrites() throws Exception {
        int value = VALUES.incrementAndGet();
        Outcome o = psql(
                holderLogin,
                "BEGIN; " + fence(grant.token()) + "; " + insert("psql", grant.token(), value) + "; COMMIT;");
        assertThat(o.exit()).as(o.output()).isZero();
        assertThat(rows(value)).isEqualTo(1);
    }

    @Test
    void anUnfencedWriteFromPsqlIsRefusedWithPL002AndWritesNothing() throws Exception {
        int value = VALUES.incrementAndGet();
        Outcome o = psql(holderLogin, insert("psql", grant.token(), value));
        assertThat(o.exit()).as(o.output()).isNotZero();
        assertThat(o.output()).contains("PL002").contains(table.substring(table.indexOf('.') + 1));
        assertThat(rows(value)).isZero();
    }

    @Test
    void anotherLoginFencingWithTheHoldersTokenFromPsqlWritesNothing() throws Exception {
        int value = VALUES.incrementAndGet();
        Outcome o = psql(
                otherLogin,
                "BEGIN; " + fence(grant.token()) + "; " + insert("psql", grant.token(), value) + "; COMMIT;");
        assertThat(o.exit()).as(o.output()).isNotZero();
        assertThat(o.output()).containsAnyOf("PL001", "PL002");
        assertThat(rows(value)).isZero();
    }

    @Test
    void pythonFencedWithTheCurrentTokenWritesAndUnfencedIsRefused() throws Exception {
        int fenced = VALUES.incrementAndGet();
        Outcome ok = python(holderLogin, fence(grant.token()), insert("python", grant.token(), fenced));
        assertThat(ok.exit()).as(ok.output()).isZero();
        assertThat(rows(fenced)).isEqualTo(1);

        int unfenced = VALUES.incrementAndGet();
        Outcome refused = python(holderLogin, insert("python", grant.token(), unfenced));
        assertThat(refused.exit()).as(refused.output()).isEqualTo(3);
        assertThat(refused.output()).contains("SQLSTATE PL002");
        assertThat(rows(unfenced)).isZero();
    }

    @Test
    void afterTheLeaseMovedOnTheOldTokenOpensNothingFromPsqlOrPython() throws Exception {
        String lease = "ledger";
        String ledger = Campaigners.protectedCounter(schema, "ledger", lease) + ".fenced_counter_log";
        try (PgLease next = PgLease.create(
                otherLogin.dataSource(),
                LeaseConfig.builder().schema(schema).holderLabel("next").build())) {
            LeaseLock old = holder.tryLock(lease, Duration.ofMinutes(5)).orElseThrow();
            long stale = old.token();
            TestDatabase.execute("SELECT " + schema + ".force_release('" + lease + "')");
            LeaseLock current = next.tryLock(lease, Duration.ofMinutes(5)).orElseThrow();
            assertThat(current.token()).isGreaterThan(stale);
            String staleFence = "SELECT " + schema + ".fence('" + lease + "', " + stale + ")";

            int value = VALUES.incrementAndGet();
            String write = "INSERT INTO " + ledger + " (name, token, holder, value) VALUES ('stale', " + stale
                    + ", 'stale', " + value + ")";
            Outcome fromPsql = psql(holderLogin, "BEGIN; " + staleFence + "; " + write + "; COMMIT;");
            assertThat(fromPsql.exit()).as(fromPsql.output()).isNotZero();
            Outcome fromPython = python(holderLogin, staleFence, write);
            assertThat(fromPython.exit()).as(fromPython.output()).isEqualTo(3);
            assertThat(Integer.parseInt(query("SELECT count(*) FROM " + ledger + " WHERE value = " + value)))
                    .isZero();
            current.close();
        }
    }
}
