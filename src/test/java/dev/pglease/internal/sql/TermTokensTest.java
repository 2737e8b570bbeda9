package dev.pglease.internal.sql;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.LeaseException;
import dev.pglease.TestDatabase;
import dev.pglease.internal.store.JdbcLeaseStore;
import dev.pglease.internal.store.LeaseStore;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * Term tokens against a real PostgreSQL: a token is {@code (term - 1) * 2^32 + counter}, the term being the server's
 * timeline. A failover is a change of timeline; here the term function of a private schema is replaced to play one
 * (the fault kit promotes real standbys).
 */
@Tag("core")
class TermTokensTest {

    private static final Duration TTL = Duration.ofSeconds(30);
    private static final long TERM = 1L << 32;
    private static String schema;
    private static LeaseStatements sql;
    private static Connection c;

    @BeforeAll
    static void setUp() throws SQLException {
        schema = TestDatabase.freshSchema();
        sql = new LeaseStatements(schema);
        c = TestDatabase.dataSource().getConnection();
    }

    @AfterAll
    static void tearDown() throws SQLException {
        c.close();
    }

    private static String lease(String name) {
        return name + "-" + System.nanoTime();
    }

    private static long queryLong(String query) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(query);
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getLong(1);
        }
    }

    private static String queryText(String query) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(query);
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getString(1);
        }
    }

    /** Plays a failover to timeline {@code term} for this test's schema only. */
    private static void playTimeline(String schemaName, long term) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("CREATE OR REPLACE FUNCTION " + schemaName
                + ".current_term() RETURNS bigint LANGUAGE sql AS 'SELECT " + term + "::bigint'")) {
            ps.execute();
        }
    }

    @Test
    void aServersFirstTermIsOneAndItIsRecordedWithItsTimeline() throws SQLException {
        long timeline = Long.parseLong(queryText("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"), 16);
        assertThat(queryLong("SELECT " + schema + ".current_term()")).isEqualTo(1);
        assertThat(queryLong("SELECT timeline FROM " + schema + ".terms WHERE term = 1"))
                .isEqualTo(timeline);
        assertThat(queryText("SELECT system_identifier::text FROM " + schema + ".terms WHERE term = 1"))
                .isEqualTo(queryText("SELECT system_identifier::text FROM pg_control_system()"));
    }

    @Test
    void onANeverPromotedServerTokensAreThePlainCounterOneTwoThree() throws SQLException {
        // a fresh cluster is on timeline 1: term 1 encodes as 0 in the high bits
        String name = lease("plain");
        assertThat(sql.acquire(c, name, "A", TTL).token()).isEqualTo(1);
        assertThat(queryText("SELECT " + schema + ".token_text(1)")).isEqualTo("1.1");
    }

    @Test
    void theNextTokenIsTheNextCounterInTheSameTermAndTheFirstOfALaterTerm() throws SQLException {
        String s = schema;
        assertThat(queryLong("SELECT " + s + ".next_token(0, 1)")).isEqualTo(1);
        assertThat(queryLong("SELECT " + s + ".next_token(41, 1)")).isEqualTo(42);
        assertThat(queryLong("SELECT " + s + ".next_token(41, 2)")).isEqualTo(TERM + 1);
        assertThat(queryLong("SELECT " + s + ".next_token(0, 3)")).isEqualTo(2 * TERM + 1);
        assertThat(queryLong("SELECT " + s + ".next_token(" + (TERM + 7) + ", 2)"))
                .isEqualTo(TERM + 8);
        // a token of a later term than the server's (e.g. rows restored into a new cluster) still only grows
        assertThat(queryLong("SELECT " + s + ".next_token(" + (2 * TERM + 7) + ", 1)"))
                .isEqualTo(2 * TERM + 8);
        assertThat(queryText("SELECT " + s + ".token_text(" + (TERM + 17) + ")"))
                .isEqualTo("2.17");
        assertThat(queryLong("SELECT " + s + ".token_term(" + (TERM + 17) + ")"))
                .isEqualTo(2);
        assertThat(queryLong("SELECT " + s + ".token_counter(" + (TERM + 17) + ")"))
                .isEqualTo(17);
        // the largest term still gives a positive bigint
        assertThat(queryLong("SELECT " + s + ".next_token(0, 2147483648)")).isEqualTo(Long.MAX_VALUE - 0xFFFFFFFEL);
    }

    @Test
    void aTermWhoseCounterIsUsedUpRefusesTheGrantNamingTheToken() {
        long last = TERM + 0xFFFFFFFFL;
        assertThatThrownBy(() -> queryLong("SELECT " + schema + ".next_token(" + last + ", 2)"))
                .isInstanceOf(SQLException.class)
                .hasMessageContaining("token " + last + " (term 2) has used every counter value of its term")
                .satisfies(e -> assertThat(((SQLException) e).getSQLState()).isEqualTo("22003"));
        // the next term starts a fresh counter
        try {
            assertThat(queryLong("SELECT " + schema + ".next_token(" + last + ", 3)"))
                    .isEqualTo(2 * TERM + 1);
        } catch (SQLException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void afterAFailoverAGrantOfTheEarlierTermIsNotRenewedAndItsHolderTakesItAgainAtOnceWithAHigherToken()
            throws SQLException {
        String s = TestDatabase.freshSchema();
        LeaseStatements local = new LeaseStatements(s);
        String name = lease("failover");
        long before = local.acquire(c, name, "A", TTL).token();
        assertThat(before).isEqualTo(1);

        playTimeline(s, 2);

        assertThat(local.renew(c, "A", List.of(new LeaseStore.Held(name, before, TTL.toMillis())))
                        .renewed())
                .as("a grant of term 1 is not renewed in term 2")
                .isEmpty();
        LeaseStore.Acquired other = local.acquire(c, name, "B", TTL);
        assertThat(other.granted())
                .as("the lease has not expired: nobody else may take it")
                .isFalse();
        assertThat(other.holder()).isEqualTo("A");
        LeaseStore.Acquired again = local.acquire(c, name, "A", TTL);
        assertThat(again.granted()).as("its holder takes it again at once").isTrue();
        assertThat(again.token()).isEqualTo(TERM + 1).isGreaterThan(before);
        assertThat(local.renew(c, "A", List.of(new LeaseStore.Held(name, again.token(), TTL.toMillis())))
                        .renewed())
                .containsExactly(name);
        assertThat(local.acquire(c, name, "A", TTL).granted())
                .as("only once per term")
                .isFalse();
    }

    @Test
    void everyTokenOfALaterTermIsAboveEveryTokenOfTheEarlierOne() throws SQLException {
        String s = TestDatabase.freshSchema();
        LeaseStatements local = new LeaseStatements(s);
        String name = lease("terms");
        long last = 0;
        for (int i = 0; i < 5; i++) {
            last = local.acquire(c, name, "A" + i, TTL).token();
            assertThat(local.release(c, name, "A" + i, last)).isTrue();
        }
        assertThat(last).isEqualTo(5);
        playTimeline(s, 3);
        long first = local.acquire(c, name, "B", TTL).token();
        assertThat(first).isEqualTo(2 * TERM + 1);
        try (PreparedStatement ps =
                c.prepareStatement("SELECT term_token, term, counter FROM " + s + ".lease_status WHERE name = ?")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                assertThat(rs.next()).isTrue();
                assertThat(rs.getString(1)).isEqualTo("3.1");
                assertThat(rs.getLong(2)).isEqualTo(3);
                assertThat(rs.getLong(3)).isEqualTo(1);
            }
        }
    }

    @Test
    void operatorFunctionsMoveTheTokenToTheCurrentTermToo() throws SQLException {
        String s = TestDatabase.freshSchema();
        LeaseStatements local = new LeaseStatements(s);
        String name = lease("operator");
        local.acquire(c, name, "A", TTL);
        playTimeline(s, 2);
        try (PreparedStatement ps = c.prepareStatement("SELECT " + s + ".force_release(?)")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                assertThat(rs.getLong(1)).isEqualTo(TERM + 1);
            }
        }
    }

    @Test
    void aSingleShotLockOfAnEarlierTermIsNotExtended() throws SQLException {
        String s = TestDatabase.freshSchema();
        LeaseStatements local = new LeaseStatements(s);
        String name = lease("lock");
        long token = new LockStatements(s).take(c, name, "A", TTL).token();
        assertThat(new LockStatements(s).extend(c, name, "A", token, TTL)).isTrue();
        playTimeline(s, 2);
        assertThat(new LockStatements(s).extend(c, name, "A", token, TTL)).isFalse();
    }

    @Test
    void aReadOnlyDatabaseIsReportedAsSuchAndNeverAsALostLease() throws SQLException {
        // read-only for one login, set on the server (as a standby is): a client-side setting (the startup
        // parameter options) would not pass PgBouncer
        String login = schema + "_read_only";
        TestDatabase.execute("DROP ROLE IF EXISTS " + login);
        TestDatabase.execute("CREATE ROLE " + login + " LOGIN IN ROLE " + schema + "_candidate");
        TestDatabase.execute("ALTER ROLE " + login + " SET default_transaction_read_only = on");
        PGSimpleDataSource readOnly = (PGSimpleDataSource) TestDatabase.dataSource();
        readOnly.setUser(login);
        readOnly.setPassword(null);
        JdbcLeaseStore store = new JdbcLeaseStore(readOnly, sql, Duration.ofSeconds(5), Duration.ofSeconds(2), false);
        try {
            assertThatThrownBy(() -> store.acquire(lease("ro"), "A", TTL))
                    .isInstanceOfSatisfying(
                            LeaseException.class,
                            e -> assertThat(e.reason()).isEqualTo(LeaseException.Reason.DATABASE_READ_ONLY))
                    .hasMessageContaining("the database is read-only")
                    .hasMessageContaining("25006");
            assertThatThrownBy(() -> store.renew("A", List.of(new LeaseStore.Held(lease("ro"), 1, 1000))))
                    .isInstanceOfSatisfying(
                            LeaseException.class,
                            e -> assertThat(e.reason()).isEqualTo(LeaseException.Reason.DATABASE_READ_ONLY));
        } finally {
            store.close();
        }
    }
}
