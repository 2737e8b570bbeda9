package dev.pglease.security;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.LeaseGrant;
import dev.pglease.LeaseLock;
import dev.pglease.PgLease;
import dev.pglease.Ticker;
import dev.pglease.internal.election.Grant;
import dev.pglease.spring.FencedTransactionTemplate;
import dev.pglease.spring.LeaderElection;
import dev.pglease.spring.PgLeaseAutoConfiguration;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import javax.sql.DataSource;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.jdbc.autoconfigure.DataSourceAutoConfiguration;
import org.springframework.boot.jdbc.autoconfigure.DataSourceTransactionManagerAutoConfiguration;
import org.springframework.boot.jdbc.autoconfigure.JdbcTemplateAutoConfiguration;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;
import org.springframework.boot.transaction.autoconfigure.TransactionAutoConfiguration;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * A protected table ({@link PgLease#protect}) refuses every write that is not in a transaction fenced for its lease
 * with the current token by the login that holds it, whoever sends it: plain JDBC, Spring in every propagation, a
 * caller-managed connection as jOOQ uses one. A refused write fails with SQLSTATE PL002 and nothing of it is
 * written; fenced writes pass.
 */
@Tag("security")
class ProtectedTablesTest {

    private static final AtomicInteger ORDERS = new AtomicInteger();
    private static HostileSchema h;
    private static String app;
    private static String table;
    private static String appOwner;
    private static PgLease holder;
    private static LeaseLock grant;

    @BeforeAll
    static void setUp() throws Exception {
        h = HostileSchema.create();
        app = h.schema + "_app";
        table = app + ".charges";
        appOwner = h.login("app_owner");
        HostileSchema.superuser("CREATE SCHEMA " + app + " AUTHORIZATION " + appOwner);
        HostileSchema.run(appOwner, "CREATE TABLE " + table + " (order_id int PRIMARY KEY, token bigint)");
        HostileSchema.run(appOwner, "GRANT USAGE ON SCHEMA " + app + " TO " + h.roles.candidate() + ", " + h.operator);
        HostileSchema.run(
                appOwner,
                "GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON " + table + " TO " + h.roles.candidate() + ", "
                        + h.operator);

        LeaseException noUsage = catchLease(() -> PgLease.protect(h.as(appOwner), h.schema, table, "payments"));
        assertThat(noUsage.reason()).isEqualTo(LeaseException.Reason.INSUFFICIENT_PRIVILEGE);
        assertThat(noUsage.getMessage()).contains("GRANT " + h.roles.observer() + " TO " + appOwner);
        HostileSchema.superuser("GRANT " + h.roles.observer() + " TO " + appOwner);
        PgLease.protect(h.as(appOwner), h.schema, table, "payments");
        PgLease.protect(h.as(appOwner), h.schema, table, "payments"); // idempotent
        assertThat(HostileSchema.query(
                        null,
                        "SELECT lease FROM " + h.schema + ".protected_tables WHERE table_name = '" + table
                                + "'::regclass"))
                .isEqualTo("payments");

        holder = PgLease.create(
                h.as(h.candA),
                LeaseConfig.builder().schema(h.schema).holderLabel("holder").build());
        grant = holder.tryLock("payments", Duration.ofMinutes(5)).orElseThrow();
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

    private static LeaseException catchLease(Runnable r) {
        Throwable t = catchThrowable(r::run);
        assertThat(t).isInstanceOf(LeaseException.class);
        return (LeaseException) t;
    }

    private static int order() {
        return ORDERS.incrementAndGet();
    }

    private static int rows(int order) throws SQLException {
        return Integer.parseInt(
                HostileSchema.query(null, "SELECT count(*) FROM " + table + " WHERE order_id = " + order));
    }

    private static void insert(Connection c, int order, long token) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + table + " (order_id, token) VALUES (?, ?)")) {
            ps.setInt(1, order);
            ps.setLong(2, token);
            ps.executeUpdate();
        }
    }

    /** The write failed with PL002 (somewhere in the cause chain, as Spring wraps it) and nothing was written. */
    private static void refused(Throwable t, int order) throws SQLException {
        assertThat(t).as("the write was refused").isNotNull();
        String state = null;
        for (Throwable c = t; c != null && state == null; c = c.getCause()) {
            if (c instanceof SQLException s && "PL002".equals(s.getSQLState())) {
                state = s.getSQLState();
            }
        }
        assertThat(state).as("SQLSTATE PL002 in %s", t.toString()).isEqualTo("PL002");
        assertThat(rows(order)).as("rows of order %d", order).isZero();
    }

    // ---- plain JDBC ----

    @Test
    void aFencedTransactionOfTheHolderWrites() throws Exception {
        int order = order();
        holder.inFencedTransaction(grant, c -> {
            insert(c, order, grant.token());
            return null;
        });
        assertThat(rows(order)).isEqualTo(1);
    }

    @Test
    void anUnfencedWriteByTheHoldersOwnLoginIsRefused() throws Exception {
        int order = order();
        refused(
                catchThrowable(() -> HostileSchema.run(h.candA, "INSERT INTO " + table + " VALUES (" + order + ", 0)")),
                order);
        for (String sql :
                new String[] {"UPDATE " + table + " SET token = 0", "DELETE FROM " + table, "TRUNCATE " + table}) {
            Throwable t = catchThrowable(() -> HostileSchema.run(h.candA, sql));
            assertThat(t).as(sql).isInstanceOf(SQLException.class);
            assertThat(((SQLException) t).getSQLState()).as(sql).isEqualTo("PL002");
        }
    }

    /**
     * A fence mark set by hand (the transaction setting the protection reads) with the current token opens the table
     * to no other login; the login that holds the lease is let through, because the protection checks the mark
     * against the lease row under its lock and the holder's login: code running as the holder that copies the
     * current token on purpose is the documented limit of the protection.
     */
    @Test
    void aHandSetFenceMarkOpensTheTableOnlyToTheLoginThatHoldsTheLease() throws Exception {
        int other = order();
        int holders = order();
        String mark =
                "SELECT set_config('pglease.fenced_" + h.schema + "', '{\"payments\": " + grant.token() + "}', true); ";
        refused(
                catchThrowable(() -> HostileSchema.run(
                        h.candB, "BEGIN; " + mark + "INSERT INTO " + table + " VALUES (" + other + ", 0); COMMIT")),
                other);
        HostileSchema.run(h.candA, "BEGIN; " + mark + "INSERT INTO " + table + " VALUES (" + holders + ", 0); COMMIT");
        assertThat(rows(holders)).as("documented limit: the holder's own login").isEqualTo(1);
    }

    @Test
    void anotherLoginFencingWithTheHoldersTokenIsRefusedByTheFence() throws Exception {
        int order = order();
        Throwable t = catchThrowable(() -> HostileSchema.run(
                h.candB,
                "BEGIN; SELECT " + h.schema + ".fence('payments', " + grant.token() + "); INSERT INTO " + table
                        + " VALUES (" + order + ", 0); COMMIT"));
        assertThat(t).isInstanceOf(SQLException.class);
        assertThat(((SQLException) t).getSQLState()).isEqualTo("PL001");
        assertThat(rows(order)).isZero();
    }

    @Test
    void aWriteAfterARollbackToTheSavepointThatHeldTheFenceIsRefused() throws Exception {
        int order = order();
        try (Connection c = h.as(h.candA).getConnection()) {
            c.setAutoCommit(false);
            Savepoint item = c.setSavepoint();
            holder.fenceTransaction(c, grant);
            c.rollback(item);
            refused(catchThrowable(() -> insert(c, order, grant.token())), order);
            c.rollback();
        }
    }

    /**
     * The old holder's lock was force-released and the lease granted to another login while the old holder did not
     * learn of it (a paused process: its view of the grant is still valid for minutes): its fence is refused and a
     * hand-made mark with its old token does not open the table; the new holder's fenced write goes in.
     */
    @Test
    void aStaleHoldersWriteIsRefused() throws Exception {
        HostileSchema.run(appOwner, "CREATE TABLE " + app + ".ledger (order_id int PRIMARY KEY, token bigint)");
        HostileSchema.run(appOwner, "GRANT SELECT, INSERT ON " + app + ".ledger TO " + h.roles.candidate());
        PgLease.protect(h.as(appOwner), h.schema, app + ".ledger", "ledger");
        String insert = "INSERT INTO " + app + ".ledger VALUES (?, ?)";
        try (PgLease old = PgLease.create(
                        h.as(h.candA),
                        LeaseConfig.builder()
                                .schema(h.schema)
                                .holderLabel("old")
                                .build());
                PgLease next = PgLease.create(
                        h.as(h.candB),
                        LeaseConfig.builder()
                                .schema(h.schema)
                                .holderLabel("next")
                                .build())) {
            LeaseLock lock = old.tryLock("ledger", Duration.ofMinutes(5)).orElseThrow();
            old.inFencedTransaction(lock, c -> write(c, insert, 1, lock.token()));
            LeaseGrant stale = new Grant(
                    "ledger",
                    lock.holder(),
                    lock.token(),
                    Ticker.SYSTEM,
                    System.nanoTime() + Duration.ofMinutes(4).toNanos());
            HostileSchema.run(h.operator, "SELECT " + h.schema + ".force_release('ledger')");
            LeaseLock current = next.tryLock("ledger", Duration.ofMinutes(5)).orElseThrow();

            Throwable fence = catchThrowable(() -> old.inFencedTransaction(stale, c -> write(c, insert, 2, 0)));
            assertThat(fence).isInstanceOf(LeaseException.class);
            assertThat(((LeaseException) fence).reason()).isEqualTo(LeaseException.Reason.STALE_TOKEN);

            try (Connection c = h.as(h.candA).getConnection()) {
                c.setAutoCommit(false);
                try (Statement s = c.createStatement()) {
                    s.execute("SELECT set_config('pglease.fenced_" + h.schema + "', '{\"ledger\": " + stale.token()
                            + "}', true)");
                }
                Throwable t = catchThrowable(() -> write(c, insert, 3, stale.token()));
                assertThat(t).isInstanceOf(SQLException.class);
                assertThat(((SQLException) t).getSQLState()).isEqualTo("PL002");
                assertThat(t.getMessage()).contains("ledger", "presented: " + stale.token());
                c.rollback();
            }
            next.inFencedTransaction(current, c -> write(c, insert, 4, current.token()));
            current.close();
        }
        assertThat(HostileSchema.query(
                        null, "SELECT string_agg(order_id::text, ',' ORDER BY order_id) FROM " + app + ".ledger"))
                .isEqualTo("1,4");
    }

    private static Void write(Connection c, String insert, int order, long token) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(insert)) {
            ps.setInt(1, order);
            ps.setLong(2, token);
            ps.executeUpdate();
        }
        return null;
    }

    // ---- a caller-managed connection (what jOOQ's DSL.using(connection) runs on) ----

    @Test
    void aCallersConnectionWritesOnlyAfterFenceTransaction() throws Exception {
        int fenced = order();
        int unfenced = order();
        DataSource ds = h.as(h.candA);
        try (Connection c = ds.getConnection()) {
            c.setAutoCommit(false);
            refused(catchThrowable(() -> insert(c, unfenced, 0)), unfenced);
            c.rollback();
            holder.fenceTransaction(c, grant);
            insert(c, fenced, grant.token());
            c.commit();
            // the next transaction on the same connection is not fenced any more
            refused(catchThrowable(() -> insert(c, unfenced, 0)), unfenced);
            c.rollback();
        }
        assertThat(rows(fenced)).isEqualTo(1);
    }

    @Test
    void aFenceForAnotherLeaseDoesNotOpenTheTable() throws Exception {
        int order = order();
        LeaseLock other = holder.tryLock("reports", Duration.ofMinutes(1)).orElseThrow();
        try (Connection c = h.as(h.candA).getConnection()) {
            c.setAutoCommit(false);
            holder.fenceTransaction(c, other);
            refused(catchThrowable(() -> insert(c, order, other.token())), order);
            c.rollback();
        } finally {
            other.close();
        }
    }

    // ---- Spring ----

    private static ApplicationContextRunner spring() {
        return new ApplicationContextRunner()
                .withConfiguration(AutoConfigurations.of(
                        DataSourceAutoConfiguration.class,
                        DataSourceTransactionManagerAutoConfiguration.class,
                        JdbcTemplateAutoConfiguration.class,
                        TransactionAutoConfiguration.class,
                        PgLeaseAutoConfiguration.class))
                .withPropertyValues(
                        "spring.datasource.url=" + h.url(h.candA),
                        "pglease.schema=" + h.schema,
                        "pglease.election.enabled=false",
                        "pglease.shedlock.enabled=false");
    }

    private static TransactionTemplate tx(PlatformTransactionManager tm, String propagation) {
        TransactionTemplate t = new TransactionTemplate(tm);
        t.setPropagationBehaviorName("PROPAGATION_" + propagation);
        return t;
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"REQUIRED", "NESTED", "REQUIRES_NEW", "SUPPORTS", "MANDATORY"})
    void inSpringAFencedCallsWriteCommitsAndAnUnfencedOneIsRefused(String propagation) {
        spring().run(context -> {
            assertThat(context).hasNotFailed();
            assertThat(context.getBeansOfType(LeaderElection.class)).isEmpty();
            FencedTransactionTemplate fenced = context.getBean(FencedTransactionTemplate.class);
            JdbcTemplate jdbc = context.getBean(JdbcTemplate.class);
            PlatformTransactionManager tm = context.getBean(PlatformTransactionManager.class);
            String insert = "INSERT INTO " + table + " (order_id, token) VALUES (?, ?)";

            int written = order();
            tx(tm, "REQUIRED")
                    .executeWithoutResult(outer -> tx(tm, propagation)
                            .executeWithoutResult(inner ->
                                    fenced.execute(grant, status -> jdbc.update(insert, written, grant.token()))));
            assertThat(rows(written))
                    .as("a fenced call's write, %s", propagation)
                    .isEqualTo(1);

            int unfenced = order();
            refused(
                    catchThrowable(() -> tx(tm, "REQUIRED")
                            .executeWithoutResult(outer -> tx(tm, propagation)
                                    .executeWithoutResult(inner -> jdbc.update(insert, unfenced, 0)))),
                    unfenced);

            int afterRollback = order();
            refused(
                    catchThrowable(() -> tx(tm, "REQUIRED").executeWithoutResult(outer -> {
                        tx(tm, "NESTED").executeWithoutResult(item -> {
                            fenced.execute(grant, status -> null);
                            item.setRollbackOnly();
                        });
                        tx(tm, propagation).executeWithoutResult(inner -> jdbc.update(insert, afterRollback, 0));
                    })),
                    afterRollback);

            if (!propagation.equals("REQUIRES_NEW")) {
                int joined = order();
                fenced.execute(
                        grant,
                        status -> tx(tm, propagation).execute(inner -> jdbc.update(insert, joined, grant.token())));
                assertThat(rows(joined))
                        .as("a write joining the fenced transaction (%s)", propagation)
                        .isEqualTo(1);
            } else {
                int suspended = order();
                refused(
                        catchThrowable(() -> fenced.execute(
                                grant,
                                status -> tx(tm, propagation)
                                        .execute(inner -> jdbc.update(insert, suspended, grant.token())))),
                        suspended);
            }
        });
    }

    // ---- protect and unprotect ----

    @Test
    void protectAndUnprotectSayWhatIsWrong() throws Exception {
        assertThatThrownBy(() -> PgLease.protect(h.as(appOwner), h.schema, app + ".missing", "payments"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("missing");
        assertThatThrownBy(() -> PgLease.protect(h.as(appOwner), h.schema, table, "other-lease"))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("payments");
        assertThatThrownBy(() -> PgLease.protect(h.as(appOwner), h.schema, table, "bad\u0000lease"))
                .isInstanceOf(IllegalArgumentException.class);
        LeaseException notOwner = catchLease(() -> PgLease.protect(h.as(h.candA), h.schema, table, "payments"));
        assertThat(notOwner.reason()).isEqualTo(LeaseException.Reason.INSUFFICIENT_PRIVILEGE);
        assertThat(notOwner.getMessage()).contains("owner");
        LeaseException noSchema =
                catchLease(() -> PgLease.protect(h.as(appOwner), "no_such_schema", table, "payments"));
        assertThat(noSchema.reason()).isEqualTo(LeaseException.Reason.SCHEMA_MISSING);
        assertThat(noSchema.getMessage()).contains("pglease migrate --schema no_such_schema");

        HostileSchema.run(appOwner, "CREATE TABLE " + app + ".notes (id int)");
        HostileSchema.run(appOwner, "GRANT INSERT ON " + app + ".notes TO " + h.roles.candidate());
        PgLease.protect(h.as(appOwner), h.schema, app + ".notes", "payments");
        Throwable t = catchThrowable(() -> HostileSchema.run(h.candA, "INSERT INTO " + app + ".notes VALUES (1)"));
        assertThat(((SQLException) t).getSQLState()).isEqualTo("PL002");
        assertThat(PgLease.unprotect(h.as(appOwner), h.schema, app + ".notes")).isTrue();
        assertThat(PgLease.unprotect(h.as(appOwner), h.schema, app + ".notes")).isFalse();
        HostileSchema.run(h.candA, "INSERT INTO " + app + ".notes VALUES (1)");
    }
}
