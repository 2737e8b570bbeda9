package dev.pglease.shedlock;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.fault.kit.TcpProxy;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.sql.DataSource;
import net.javacrumbs.shedlock.core.LockConfiguration;
import net.javacrumbs.shedlock.core.SimpleLock;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * A lock whose grant committed while its answer was lost (the connection reset right after the server committed, the
 * classic lost reply). The README promises for lease statements: "A candidate that finds itself listed as the holder
 * of a grant it was never told about (an acquire that committed while its answer was lost to a reset connection)
 * releases that grant at once", so such a grant "does not sit unused".
 *
 * <p>On main a {@code LeaseLock} (and so every {@code @SchedulerLock} task through {@link PgLeaseLockProvider}) has
 * no such path: the lost grant keeps the lock for its whole {@code lockAtMostFor}; the process that holds it without
 * knowing is told "held by this process already" and every other node "held by another": no node runs the task for
 * {@code lockAtMostFor} (here ten minutes).
 */
class LostLockAnswerTest {

    private static final Duration AT_MOST = Duration.ofMinutes(10);

    private static LockConfiguration invoiceRun() {
        return new LockConfiguration(Instant.now(), "invoice-run", AT_MOST, Duration.ZERO);
    }

    /** Connections through the proxy; the next commit, once armed, loses its answer to a reset connection. */
    private static DataSource losingTheNextCommitsAnswer(TcpProxy proxy, AtomicBoolean armed) {
        PGSimpleDataSource ds = (PGSimpleDataSource) TestDatabase.dataSource();
        ds.setURL(TestDatabase.jdbcUrl().replaceFirst("//([^:/]+):(\\d+)/", "//127.0.0.1:" + proxy.port() + "/"));
        return (DataSource) Proxy.newProxyInstance(
                DataSource.class.getClassLoader(), new Class<?>[] {DataSource.class}, (p, m, args) -> {
                    Object result = invoke(ds, m, args);
                    if (!m.getName().equals("getConnection")) {
                        return result;
                    }
                    Connection c = (Connection) result;
                    return Proxy.newProxyInstance(
                            Connection.class.getClassLoader(), new Class<?>[] {Connection.class}, (pc, cm, cargs) -> {
                                if (cm.getName().equals("commit") && armed.compareAndSet(true, false)) {
                                    proxy.resetAfterNextAnswer(); // the COMMIT reaches the server, its answer does not
                                }
                                return invoke(c, cm, cargs);
                            });
                });
    }

    private static Object invoke(Object target, java.lang.reflect.Method m, Object[] args) throws Throwable {
        try {
            return m.invoke(target, args);
        } catch (InvocationTargetException e) {
            throw e.getCause();
        }
    }

    @Test
    void aLockWhoseGrantCommittedButWhoseAnswerWasLostIsTakenAgainSoonNotAfterLockAtMostFor() throws Exception {
        String schema = TestDatabase.freshSchema();
        Matcher hostPort = Pattern.compile("//([^:/]+):(\\d+)/").matcher(TestDatabase.jdbcUrl());
        assertThat(hostPort.find()).isTrue();
        AtomicBoolean armed = new AtomicBoolean();
        try (TcpProxy proxy = new TcpProxy(hostPort.group(1), Integer.parseInt(hostPort.group(2)));
                PgLease nodeA = PgLease.create(
                        losingTheNextCommitsAnswer(proxy, armed),
                        LeaseConfig.builder()
                                .schema(schema)
                                .directDataSource(TestDatabase.dataSource()) // LISTEN off the proxy
                                .build());
                PgLease nodeB = PgLease.create(
                        TestDatabase.dataSource(),
                        LeaseConfig.builder().schema(schema).build())) {
            PgLeaseLockProvider providerA = new PgLeaseLockProvider(nodeA);
            PgLeaseLockProvider providerB = new PgLeaseLockProvider(nodeB);

            armed.set(true);
            Throwable lost = catchThrowable(() -> providerA.lock(invoiceRun()));
            assertThat(lost)
                    .as("node A's lock statement, whose answer was lost")
                    .isNotNull();
            try (Connection c = TestDatabase.dataSource().getConnection();
                    java.sql.ResultSet held = c.createStatement()
                            .executeQuery("SELECT holder FROM " + schema + ".lease_status WHERE name = 'invoice-run'"
                                    + " AND held")) {
                assertThat(held.next())
                        .as("the lock was granted in the database all the same")
                        .isTrue();
            }

            // The next runs of the task, on both nodes, every 200 ms for 5 s (a lease statement's usual horizon).
            Optional<SimpleLock> taken = Optional.empty();
            long end = System.nanoTime() + Duration.ofSeconds(5).toNanos();
            while (taken.isEmpty() && System.nanoTime() < end) {
                taken = providerA.lock(invoiceRun());
                if (taken.isEmpty()) {
                    taken = providerB.lock(invoiceRun());
                }
                if (taken.isEmpty()) {
                    Thread.sleep(200);
                }
            }
            assertThat(taken)
                    .as(
                            "a node could run the task within 5 s of the lost answer (not only after lockAtMostFor, %s)",
                            AT_MOST)
                    .isPresent();
            taken.get().unlock();
        }
    }
}
