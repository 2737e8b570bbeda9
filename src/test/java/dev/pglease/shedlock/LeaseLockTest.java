package dev.pglease.shedlock;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.LeaseLock;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import javax.sql.DataSource;
import net.javacrumbs.shedlock.core.DefaultLockingTaskExecutor;
import net.javacrumbs.shedlock.core.LockExtender;
import net.javacrumbs.shedlock.core.LockProvider;
import net.javacrumbs.shedlock.core.SimpleLock;
import net.javacrumbs.shedlock.support.KeepAliveLockProvider;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The single-shot lease locks under the ShedLock provider: tokens, events, extension, validity. */
class LeaseLockTest {

    private static String schema;
    private static DataSource dataSource;
    private static PgLease a;
    private static PgLease b;

    @BeforeAll
    static void setUp() {
        schema = TestDatabase.freshSchema();
        dataSource = TestDatabase.dataSource();
        LeaseConfig config = LeaseConfig.builder().schema(schema).build();
        a = PgLease.create(dataSource, config);
        b = PgLease.create(dataSource, config);
    }

    @AfterAll
    static void tearDown() {
        a.close();
        b.close();
    }

    @Test
    void theTokenGrowsWithEveryNewGrantAndEveryGrantIsAnEvent() throws Exception {
        String name = "tokens-" + System.nanoTime();
        List<Long> tokens = new ArrayList<>();
        for (PgLease p : List.of(a, b, a, a)) {
            try (LeaseLock lock = p.tryLock(name, Duration.ofSeconds(30)).orElseThrow()) {
                assertThat(lock.holder()).isEqualTo(p.holderId() + "#lock");
                tokens.add(lock.token());
            }
        }
        assertThat(tokens).containsExactly(1L, 2L, 3L, 4L);
        try (Connection c = dataSource.getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT string_agg(kind || ':' || token, ',' ORDER BY id)"
                        + " FROM " + schema + ".lease_events WHERE name = ?")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                assertThat(rs.getString(1))
                        .isEqualTo(
                                "acquired:1,released:1,acquired:2,released:2,acquired:3,released:3,acquired:4,released:4");
            }
        }
    }

    @Test
    void aLockKeptForLockAtLeastForIsNotTakenAgainByItsOwnProcessEither() throws Exception {
        String name = "kept-" + System.nanoTime();
        LeaseLock lock = a.tryLock(name, Duration.ofSeconds(30)).orElseThrow();
        assertThat(lock.unlock(Duration.ofSeconds(2))).isTrue();
        assertThat(a.tryLock(name, Duration.ofSeconds(30)))
                .as("the same process, while the lock is kept for lockAtLeastFor (a token it knows, not a lost answer)")
                .isEmpty();
        Thread.sleep(2100);
        try (LeaseLock next = a.tryLock(name, Duration.ofSeconds(30)).orElseThrow()) {
            assertThat(next.token()).isEqualTo(lock.token() + 1);
        }
    }

    @Test
    void theLocalMarginOfALockGrowsWithItsTimeToLive() throws Exception {
        try (LeaseLock lock =
                a.tryLock("long-" + System.nanoTime(), Duration.ofMinutes(10)).orElseThrow()) {
            assertThat(lock.remaining())
                    .as("a tenth of the time to live is kept as margin for clock drift")
                    .isLessThanOrEqualTo(Duration.ofMinutes(9))
                    .isGreaterThan(Duration.ofMinutes(8));
        }
    }

    @Test
    void aLockIsValidLocallyUntilJustBeforeItsTimeToLive() throws Exception {
        String name = "validity-" + System.nanoTime();
        LeaseLock lock = a.tryLock(name, Duration.ofMillis(1000)).orElseThrow();
        assertThat(lock.isValid()).isTrue();
        assertThat(lock.remaining())
                .as("the time to live minus a margin")
                .isLessThanOrEqualTo(Duration.ofMillis(900))
                .isPositive();
        Thread.sleep(1000);
        assertThat(lock.isValid()).isFalse();
        assertThatThrownBy(lock::checkValid)
                .isInstanceOfSatisfying(
                        LeaseException.class, e -> assertThat(e.reason()).isEqualTo(LeaseException.Reason.LEASE_LOST));
        assertThat(lock.extend(Duration.ofSeconds(5)))
                .as("no extension once invalid")
                .isFalse();
        assertThat(lock.unlock(Duration.ZERO))
                .as("the database no longer lists it")
                .isFalse();
    }

    @Test
    void unlockingEndsValidityAtOnceAndIsIdempotent() {
        String name = "unlock-" + System.nanoTime();
        LeaseLock lock = a.tryLock(name, Duration.ofSeconds(30)).orElseThrow();
        assertThat(lock.unlock(Duration.ZERO)).isTrue();
        assertThat(lock.isValid()).isFalse();
        assertThat(lock.unlock(Duration.ZERO)).isFalse();
        assertThatThrownBy(() -> lock.extend(Duration.ofSeconds(1)))
                .isInstanceOfSatisfying(
                        LeaseException.class, e -> assertThat(e.reason()).isEqualTo(LeaseException.Reason.CLOSED));
    }

    @Test
    void aShorterExtensionReplacesTheLeadershipAndInvalidatesTheOldOne() {
        String name = "shorter-" + System.nanoTime();
        try (LeaseLock lock = a.tryLock(name, Duration.ofSeconds(30)).orElseThrow()) {
            Leadership before = lock.leadership();
            assertThat(lock.extend(Duration.ofSeconds(60))).isTrue();
            assertThat(lock.leadership()).as("longer: same object, extended").isSameAs(before);
            assertThat(lock.extend(Duration.ofSeconds(5))).isTrue();
            assertThat(before.isValid())
                    .as("the longer deadline no longer holds")
                    .isFalse();
            assertThat(lock.leadership().isValid()).isTrue();
            assertThat(lock.leadership().token()).isEqualTo(before.token());
            assertThat(lock.remaining()).isLessThanOrEqualTo(Duration.ofSeconds(5));
            assertThat(b.leader(name))
                    .get()
                    .satisfies(info -> assertThat(info.remaining())
                            .isLessThanOrEqualTo(Duration.ofSeconds(5))
                            .isGreaterThan(Duration.ofSeconds(3)));
        }
    }

    @Test
    void shedLocksLockExtenderExtendsAPgleaseLock() throws Exception {
        String name = "extender-" + System.nanoTime();
        new DefaultLockingTaskExecutor(new PgLeaseLockProvider(a))
                .executeWithLock(
                        (Runnable) () -> {
                            LockExtender.extendActiveLock(Duration.ofSeconds(20), Duration.ZERO);
                            assertThat(b.leader(name))
                                    .get()
                                    .satisfies(
                                            info -> assertThat(info.remaining()).isGreaterThan(Duration.ofSeconds(10)));
                            assertThat(PgLeaseLockProvider.currentLock())
                                    .get()
                                    .extracting(LeaseLock::isValid)
                                    .isEqualTo(true);
                        },
                        LockProviderContract.config(name, Duration.ofMillis(500)));
        assertThat(b.leader(name)).as("released after the task").isEmpty();
    }

    @Test
    void shedLocksKeepAliveProviderAcceptsThePgleaseProvider() {
        ScheduledExecutorService scheduler = Executors.newSingleThreadScheduledExecutor();
        try {
            LockProvider keepAlive = new KeepAliveLockProvider(new PgLeaseLockProvider(a), scheduler);
            String name = "keep-alive-" + System.nanoTime();
            SimpleLock lock = keepAlive
                    .lock(LockProviderContract.config(name, Duration.ofSeconds(60)))
                    .orElseThrow();
            assertThat(PgLeaseLockProvider.currentLock())
                    .get()
                    .extracting(LeaseLock::name)
                    .isEqualTo(name);
            lock.unlock();
            assertThat(b.leader(name)).isEmpty();
        } finally {
            scheduler.shutdownNow();
        }
    }

    @Test
    void locksAreNestedPerThread() {
        PgLeaseLockProvider provider = new PgLeaseLockProvider(a, "nested:");
        var outer = provider.lock(LockProviderContract.config("outer", Duration.ofSeconds(30)))
                .orElseThrow();
        long outerToken = PgLeaseLockProvider.currentToken();
        var inner = provider.lock(LockProviderContract.config("inner", Duration.ofSeconds(30)))
                .orElseThrow();
        assertThat(PgLeaseLockProvider.currentLock())
                .get()
                .extracting(LeaseLock::name)
                .isEqualTo("nested:inner");
        inner.unlock();
        assertThat(PgLeaseLockProvider.currentLock())
                .get()
                .extracting(LeaseLock::token)
                .isEqualTo(outerToken);
        outer.unlock();
        assertThat(PgLeaseLockProvider.currentLock()).isEmpty();
        assertThatThrownBy(PgLeaseLockProvider::currentToken).isInstanceOf(IllegalStateException.class);
    }

    /** The single-shot lock snippet of docs/integrations.md. */
    static boolean exportOnce(PgLease pglease) throws java.sql.SQLException {
        // tag::lease-lock[]
        Optional<LeaseLock> taken = pglease.tryLock("nightly-export", Duration.ofMinutes(10));
        if (taken.isEmpty()) {
            return false; // another node runs the export
        }
        try (LeaseLock lock = taken.get()) {
            pglease.inFencedTransaction(lock, connection -> exportRows(connection, lock.token()));
            lock.extend(Duration.ofMinutes(10)); // still working: push the expiry out
            pglease.inFencedTransaction(lock, connection -> exportRows(connection, lock.token()));
        }
        return true;
        // end::lease-lock[]
    }

    private static int exportRows(Connection connection, long token) throws java.sql.SQLException {
        try (PreparedStatement ps = connection.prepareStatement("SELECT ?::bigint")) {
            ps.setLong(1, token);
            ps.execute();
            return 1;
        }
    }

    @Test
    void theSingleShotLockSnippetRunsOncePerLock() throws Exception {
        assertThat(exportOnce(a)).isTrue();
        try (LeaseLock held =
                b.tryLock("nightly-export", Duration.ofSeconds(30)).orElseThrow()) {
            assertThat(held.holder()).isEqualTo(b.holderId() + "#lock");
            assertThat(exportOnce(a)).as("skipped while another node holds it").isFalse();
        }
    }

    @Test
    void locksWorkForLeastPrivilegeCandidateRolesUnderTheGuardTriggers() throws Exception {
        String suffix = ProcessHandle.current().pid() + "_" + (System.nanoTime() % 1_000_000);
        List<String> users = List.of("lock_a_" + suffix, "lock_b_" + suffix);
        for (String user : users) {
            TestDatabase.execute(
                    "CREATE ROLE " + user + " LOGIN PASSWORD 'pw_" + user + "' IN ROLE " + schema + "_candidate");
        }
        try (PgLease userA = PgLease.create(
                        loginAs(users.get(0)),
                        LeaseConfig.builder().schema(schema).build());
                PgLease userB = PgLease.create(
                        loginAs(users.get(1)),
                        LeaseConfig.builder().schema(schema).build())) {
            String name = "roles-" + System.nanoTime();
            LeaseLock lock = userA.tryLock(name, Duration.ofSeconds(30)).orElseThrow();
            assertThat(userB.tryLock(name, Duration.ofSeconds(30))).isEmpty();
            assertThat(holderRole(name))
                    .as("taken by the candidate login, not the owner")
                    .isEqualTo(users.get(0));
            assertThat(lock.extend(Duration.ofSeconds(60))).isTrue();
            assertThat(lock.extend(Duration.ofSeconds(20))).isTrue();
            assertThat(lock.unlock(Duration.ofSeconds(2))).isTrue();
            assertThat(userB.tryLock(name, Duration.ofSeconds(30)))
                    .as("kept for lockAtLeastFor")
                    .isEmpty();
            Thread.sleep(2100);
            LeaseLock next = userB.tryLock(name, Duration.ofSeconds(30)).orElseThrow();
            assertThat(next.token()).isEqualTo(lock.token() + 1);
            assertThat(next.unlock(Duration.ZERO)).isTrue();
        } finally {
            for (String user : users) {
                TestDatabase.execute("DROP ROLE IF EXISTS " + user);
            }
        }
    }

    private static String holderRole(String name) throws java.sql.SQLException {
        try (Connection c = dataSource.getConnection();
                PreparedStatement ps =
                        c.prepareStatement("SELECT holder_role FROM " + schema + ".leases WHERE name = ?")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getString(1);
            }
        }
    }

    private static DataSource loginAs(String user) {
        org.postgresql.ds.PGSimpleDataSource ds = new org.postgresql.ds.PGSimpleDataSource();
        ds.setURL(TestDatabase.jdbcUrl());
        ds.setUser(user);
        ds.setPassword("pw_" + user);
        return ds;
    }

    @Test
    void invalidArgumentsAreRefused() {
        assertThatThrownBy(() -> a.tryLock("x", Duration.ZERO))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("lockAtMostFor");
        assertThatThrownBy(() -> a.tryLock("", Duration.ofSeconds(1))).isInstanceOf(IllegalArgumentException.class);
        Optional<LeaseLock> lock = a.tryLock("args-" + System.nanoTime(), Duration.ofSeconds(1));
        assertThatThrownBy(() -> lock.orElseThrow().unlock(Duration.ofMillis(-1)))
                .isInstanceOf(IllegalArgumentException.class);
        lock.orElseThrow().close();
    }
}
