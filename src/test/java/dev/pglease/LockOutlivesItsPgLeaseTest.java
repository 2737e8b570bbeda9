package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * A {@link LeaseLock} (what {@code PgLeaseLockProvider} hands ShedLock) when its {@code PgLease} is closed, as a
 * Spring context closes it on shutdown while a {@code @SchedulerLock} task still runs. {@link PgLease#close()}:
 * "Ends every leadership locally, releases every held lease"; {@link LeaseLock}: "its {@code PgLease} reads the rows
 * of its live locks every retryPeriod ... When the database no longer lists the lock with its holder and token (an
 * operator's force release or handoff, or its expiry) ... its validity ends at once".
 *
 * <p>On main {@code close()} neither ends nor releases a lock: it stays valid locally (for nine tenths of
 * {@code lockAtMostFor}) and held in the database, and, the checks having stopped with the {@code PgLease}, it no
 * longer learns of an operator's force release: code that guards an action with {@code lock.isValid()} goes on acting
 * for minutes after the lock was taken from it.
 */
class LockOutlivesItsPgLeaseTest {

    private static String schema;

    @BeforeAll
    static void setUp() {
        schema = TestDatabase.freshSchema();
    }

    private static PgLease node() {
        return PgLease.create(
                TestDatabase.dataSource(),
                LeaseConfig.builder()
                        .schema(schema)
                        .leaseDuration(Duration.ofSeconds(2))
                        .renewDeadline(Duration.ofMillis(1500))
                        .retryPeriod(Duration.ofMillis(500))
                        .build());
    }

    private static boolean heldInTheDatabase(String name) throws Exception {
        try (Connection c = TestDatabase.dataSource().getConnection();
                Statement s = c.createStatement();
                ResultSet rs =
                        s.executeQuery("SELECT held FROM " + schema + ".lease_status WHERE name = '" + name + "'")) {
            return rs.next() && rs.getBoolean(1);
        }
    }

    @Test
    void closingThePgLeaseEndsItsLocksAndReleasesThem() throws Exception {
        PgLease pglease = node();
        LeaseLock lock =
                pglease.tryLock("nightly-export", Duration.ofMinutes(10)).orElseThrow();
        pglease.close();
        assertThat(lock.isValid()).as("the lock after its PgLease was closed").isFalse();
        assertThat(heldInTheDatabase("nightly-export"))
                .as("the lock held in the database after its PgLease was closed")
                .isFalse();
    }

    @Test
    void aLockWhosePgLeaseWasClosedStillEndsWhenAnOperatorForceReleasesIt() throws Exception {
        PgLease pglease = node();
        LeaseLock lock = pglease.tryLock("invoice-run", Duration.ofMinutes(10)).orElseThrow();
        pglease.close();
        TestDatabase.execute("SELECT " + schema + ".force_release('invoice-run')");
        long end = System.nanoTime() + Duration.ofSeconds(3).toNanos(); // retryPeriod and a second, and more
        while (lock.isValid() && System.nanoTime() < end) {
            Thread.sleep(20);
        }
        assertThat(lock.isValid())
                .as("the lock 3 s after an operator force-released it (remaining %s)", lock.remaining())
                .isFalse();
    }
}
