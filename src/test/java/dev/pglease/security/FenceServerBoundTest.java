package dev.pglease.security;

import static dev.pglease.testkit.Lane.PG13;
import static dev.pglease.testkit.Lane.PG14;
import static dev.pglease.testkit.Lane.PG15;
import static dev.pglease.testkit.Lane.PG16;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.LeaseConfig;
import dev.pglease.LeaseLock;
import dev.pglease.PgLease;
import dev.pglease.testkit.NotInLane;
import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The schema's {@code fence(lease, token, max_ms)} bounds the whole rest of the transaction on the server from the
 * moment it is called (PostgreSQL 17+, {@code transaction_timeout}), also when the login's role has a default
 * {@code transaction_timeout} of its own whose timer is already running: a client in any language that keeps
 * sending short statements can not hold the lease row past the bound. The bound is the lease's remaining time when
 * that is shorter than the one the caller asked for, on every version. No client-side timer is involved here (the
 * fence is called as plain SQL).
 */
@Tag("security")
class FenceServerBoundTest {

    @Test
    @NotInLane(
            value = {PG13, PG14, PG15, PG16},
            because =
                    "checks the server's whole-transaction bound, transaction_timeout, which PostgreSQL 17 introduced (before 17 the client-side abort is the bound: FencedTransactionBoundTest)")
    void theFenceBoundsTheRestOfTheTransactionFromTheFenceWhateverTheRolesDefault() throws Exception {
        HostileSchema h = HostileSchema.create();
        String holder = h.login("bounded", h.roles.candidate());
        HostileSchema.superuser("ALTER ROLE " + holder + " SET transaction_timeout = '60s'");
        try (PgLease pglease = PgLease.create(
                        h.as(holder), LeaseConfig.builder().schema(h.schema).build());
                LeaseLock lock =
                        pglease.tryLock("server-bound", Duration.ofMinutes(1)).orElseThrow();
                Connection c = h.as(holder).getConnection()) {
            c.setAutoCommit(false);
            long start;
            Throwable ended;
            try (Statement s = c.createStatement()) {
                s.execute("SELECT pg_sleep(0.3)"); // the transaction (and the role's 60 s timer) started before
                start = System.nanoTime();
                s.execute("SELECT " + h.schema + ".fence('server-bound', " + lock.token() + ", 1000)");
                ended = catchThrowable(() -> {
                    for (int i = 0; i < 30; i++) {
                        s.execute("SELECT pg_sleep(0.1)");
                    }
                });
            }
            long afterMs = (System.nanoTime() - start) / 1_000_000;
            assertThat(ended).as("the server ended the transaction").isInstanceOf(SQLException.class);
            assertThat(afterMs)
                    .as("the transaction ended %d ms after the fence (bound 1000 ms): %s", afterMs, ended)
                    .isBetween(900L, 1_800L);
        }
    }

    /**
     * A caller's bound longer than the lease's remaining time does not stretch the transaction past the lease's
     * expiry: the fence bounds it by the lease's remaining time (on PostgreSQL 17+ the transaction timer the caller's
     * bound started is armed again, from the fence, with the shorter time).
     */
    @Test
    void theFenceBoundsTheTransactionByTheLeasesRemainingTimeWhenTheCallersBoundIsLonger() throws Exception {
        HostileSchema h = HostileSchema.create();
        String holder = h.login("short", h.roles.candidate());
        try (PgLease pglease = PgLease.create(
                        h.as(holder), LeaseConfig.builder().schema(h.schema).build());
                LeaseLock lock =
                        pglease.tryLock("short-lease", Duration.ofMillis(1500)).orElseThrow();
                Connection c = h.as(holder).getConnection()) {
            c.setAutoCommit(false);
            Throwable ended;
            try (Statement s = c.createStatement()) {
                s.execute("SELECT " + h.schema + ".fence('short-lease', " + lock.token() + ", 30000)");
                Thread.sleep(3_000); // idle in the fenced transaction, past the lease's expiry
                ended = catchThrowable(() -> {
                    s.execute("SELECT 1");
                    c.commit();
                });
            }
            assertThat(ended)
                    .as("the fenced transaction, idle past its lease's expiry (the lease had at most 1.5 s left, the "
                            + "caller asked for 30 s)")
                    .isInstanceOf(SQLException.class);
        }
    }
}
