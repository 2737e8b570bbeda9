package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.fault.kit.TcpProxy;
import dev.pglease.testkit.Lane;
import dev.pglease.testkit.NotInLane;
import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.SQLFeatureNotSupportedException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.sql.DataSource;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * A member whose lease connection hangs (its renewals and acquires get no answer) while its other connections work
 * is not a live member: it does not join the group again on another connection, where the others would give it
 * shards it can not take, so the group's shards stay owned by the members that can take them.
 */
@Timeout(120)
@NotInLane(
        value = {Lane.PGBOUNCER_TRANSACTION, Lane.PGBOUNCER_SESSION},
        because = "routes one member's lease connection" + " through a TCP proxy of its own, straight to the server")
class GroupStuckLeaseConnectionTest {

    private static final Duration LEASE = Duration.ofMillis(1000);
    private final List<AutoCloseable> opened = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (int i = opened.size() - 1; i >= 0; i--) {
            opened.get(i).close();
        }
    }

    private LeaseGroup member(DataSource ds, String schema, String label, String group) {
        PgLease p = PgLease.create(
                ds,
                LeaseConfig.builder()
                        .schema(schema)
                        .holderLabel(label)
                        .leaseDuration(LEASE)
                        .renewDeadline(Duration.ofMillis(600))
                        .retryPeriod(Duration.ofMillis(200))
                        .build());
        opened.add(p);
        LeaseGroup g = p.group(group, 6, new LeaseGroupTest.Recorder());
        opened.add(g);
        return g;
    }

    private static int held(String schema, String group) throws SQLException {
        try (Connection c = TestDatabase.dataSource().getConnection();
                Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT count(*) FROM " + schema + ".group_shard_status WHERE group_name"
                        + " = '" + group + "' AND held")) {
            rs.next();
            return rs.getInt(1);
        }
    }

    @Test
    void aMemberWhoseLeaseConnectionHangsDoesNotJoinAgainOnAnotherAndLeaveShardsUnowned() throws Exception {
        String schema = TestDatabase.freshSchema();
        String group = "stuck-" + System.nanoTime();
        Matcher m = Pattern.compile("//([^:/]+):(\\d+)/").matcher(TestDatabase.jdbcUrl());
        assertThat(m.find()).as("host and port in %s", TestDatabase.jdbcUrl()).isTrue();
        TcpProxy proxy = new TcpProxy(m.group(1), Integer.parseInt(m.group(2)));
        opened.add(proxy);
        PGSimpleDataSource viaProxy = new PGSimpleDataSource();
        viaProxy.setURL(TestDatabase.jdbcUrl().replaceFirst("//([^:/]+):(\\d+)/", "//127.0.0.1:" + proxy.port() + "/"));
        DataSource direct = TestDatabase.dataSource();

        LeaseGroup a = member(direct, schema, "a", group);
        LeaseGroup b = member(direct, schema, "b", group);
        LeaseGroup c = member(new LeaseConnectionVia(viaProxy, direct), schema, "c", group);
        Awaitility.await("two shards each")
                .atMost(Duration.ofSeconds(20))
                .until(() -> a.ownedShards().size() == 2
                        && b.ownedShards().size() == 2
                        && c.ownedShards().size() == 2);

        proxy.blackhole(true); // c's lease connection gets no answer from now on; its other connections work
        Awaitility.await("a and b own every shard")
                .atMost(LEASE.multipliedBy(4))
                .until(() -> a.ownedShards().size() + b.ownedShards().size() == 6);
        int samples = 0;
        int short_ = 0;
        for (long end = System.nanoTime() + LEASE.multipliedBy(4).toNanos(); System.nanoTime() < end; samples++) {
            if (held(schema, group) < 6) {
                short_++;
            }
            Thread.sleep(50);
        }
        assertThat(short_)
                .as(
                        "reads of the group, out of %d over four lease durations while c's lease connection hung, that"
                                + " found a shard without an owner",
                        samples)
                .isZero();
        proxy.blackhole(false);
    }

    /** Gives the lease connection (the one the lease store opens) through one data source, every other through another. */
    private static final class LeaseConnectionVia implements DataSource {
        private final DataSource lease;
        private final DataSource others;

        LeaseConnectionVia(DataSource lease, DataSource others) {
            this.lease = lease;
            this.others = others;
        }

        private static boolean forLeaseStore() {
            return StackWalker.getInstance()
                    .walk(s -> s.anyMatch(f -> f.getClassName().equals("dev.pglease.internal.store.JdbcLeaseStore")));
        }

        @Override
        public Connection getConnection() throws SQLException {
            return forLeaseStore() ? lease.getConnection() : others.getConnection();
        }

        @Override
        public Connection getConnection(String user, String password) throws SQLException {
            return forLeaseStore() ? lease.getConnection(user, password) : others.getConnection(user, password);
        }

        @Override
        public PrintWriter getLogWriter() throws SQLException {
            return others.getLogWriter();
        }

        @Override
        public void setLogWriter(PrintWriter out) throws SQLException {
            others.setLogWriter(out);
        }

        @Override
        public void setLoginTimeout(int seconds) throws SQLException {
            others.setLoginTimeout(seconds);
        }

        @Override
        public int getLoginTimeout() throws SQLException {
            return others.getLoginTimeout();
        }

        @Override
        public java.util.logging.Logger getParentLogger() throws SQLFeatureNotSupportedException {
            throw new SQLFeatureNotSupportedException();
        }

        @Override
        public <T> T unwrap(Class<T> iface) throws SQLException {
            throw new SQLException("not a wrapper");
        }

        @Override
        public boolean isWrapperFor(Class<?> iface) {
            return false;
        }
    }
}
