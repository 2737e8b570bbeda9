package dev.pglease;

import static dev.pglease.LeaseGroupTest.await;
import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.fault.kit.TcpProxy;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.sql.DataSource;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * While the database refuses connections, a member backs off between its attempts to reach it, as the election loop
 * does: an outage costs a few connection attempts per retry period, not a busy loop.
 */
@org.junit.jupiter.api.Timeout(120)
@Tag("core")
class GroupOutageBackoffTest {

    @Test
    void aMemberCutOffFromTheDatabaseTriesAgainAtItsRetryPeriodNotInABusyLoop() throws Exception {
        Matcher m = Pattern.compile("//([^:/]+):(\\d+)/").matcher(TestDatabase.jdbcUrl());
        assertThat(m.find()).as("host and port in %s", TestDatabase.jdbcUrl()).isTrue();
        String schema = TestDatabase.freshSchema();
        try (TcpProxy proxy = new TcpProxy(m.group(1), Integer.parseInt(m.group(2)))) {
            PGSimpleDataSource viaProxy = new PGSimpleDataSource();
            viaProxy.setURL(
                    TestDatabase.jdbcUrl().replaceFirst("//([^:/]+):(\\d+)/", "//127.0.0.1:" + proxy.port() + "/"));
            viaProxy.setConnectTimeout(2);
            viaProxy.setLoginTimeout(2);
            AtomicInteger attempts = new AtomicInteger();
            DataSource counted = (DataSource) Proxy.newProxyInstance(
                    DataSource.class.getClassLoader(), new Class<?>[] {DataSource.class}, (p, method, args) -> {
                        if (method.getName().equals("getConnection")) {
                            attempts.incrementAndGet();
                        }
                        try {
                            return method.invoke(viaProxy, args);
                        } catch (InvocationTargetException e) {
                            throw e.getCause();
                        }
                    });
            // retry period 250 ms: over a 2 s outage, each of the member's loops (its own thread, the lease loop)
            // tries about 8 times, twice as often while it backs off from a first failure
            try (PgLease lease = PgLease.create(
                    counted,
                    LeaseConfig.builder()
                            .schema(schema)
                            .holderLabel("m")
                            .leaseDuration(Duration.ofMillis(3000))
                            .renewDeadline(Duration.ofMillis(1000))
                            .retryPeriod(Duration.ofMillis(250))
                            .build())) {
                LeaseGroup g = lease.group("backoff", 8, new LeaseGroupTest.Recorder());
                await("8 shards owned", () -> g.ownedShards().size() == 8);

                proxy.cut();
                int before = attempts.get();
                Thread.sleep(2000);
                int during = attempts.get() - before;
                proxy.restore();

                assertThat(during)
                        .as("connection attempts during a 2 s outage with a 250 ms retry period")
                        .isLessThanOrEqualTo(100);
                await("8 shards owned again", () -> g.ownedShards().size() == 8);
            }
        }
    }
}
