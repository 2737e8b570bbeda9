package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import java.io.PrintWriter;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Proxy;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.SQLFeatureNotSupportedException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;
import javax.sql.DataSource;
import org.junit.jupiter.api.Test;

/**
 * The README promises: "Connections borrowed from your pool go back as they came: ... the lease connection resets
 * every setting pglease changed". The lease connection runs with {@code statement_timeout} and {@code lock_timeout}
 * at half its network timeout and with the role's idle timeouts switched off; a connection that goes back to the
 * application's pool with those settings cancels the application's own long statements after a few seconds and no
 * longer has the idle timeouts its DBA set.
 *
 * <p>Here a HikariCP pool is watched: every connection pglease gives back is compared with how it was lent. A lease
 * statement that fails with an ordinary SQL error on a healthy connection (here an elector asking for a name that is
 * a lock's, SQLSTATE PL003; a privilege revoked or a deadlock do the same) makes pglease drop its lease connection.
 * On main it is closed straight back into the pool with pglease's session settings still on it.
 */
class PooledLeaseConnectionSettingsTest {

    private static final String SETTINGS = "SELECT current_setting('statement_timeout') || ' / '"
            + " || current_setting('lock_timeout') || ' / ' || current_setting('idle_in_transaction_session_timeout')";

    /** A data source over the pool that records each connection given back with other settings than it was lent. */
    static final class Watched implements DataSource {
        private final DataSource pool;
        final List<String> changed = new CopyOnWriteArrayList<>();

        Watched(DataSource pool) {
            this.pool = pool;
        }

        @Override
        public Connection getConnection() throws SQLException {
            Connection c = pool.getConnection();
            String lent = settings(c);
            return (Connection) Proxy.newProxyInstance(
                    Connection.class.getClassLoader(), new Class<?>[] {Connection.class}, (proxy, method, args) -> {
                        if (method.getName().equals("close") && !c.isClosed()) {
                            String back = settings(c);
                            if (!back.equals(lent)) {
                                changed.add("lent with " + lent + ", given back with " + back);
                            }
                        }
                        try {
                            return method.invoke(c, args);
                        } catch (InvocationTargetException e) {
                            throw e.getCause();
                        }
                    });
        }

        private static String settings(Connection c) throws SQLException {
            boolean autoCommit = c.getAutoCommit();
            if (!autoCommit) {
                return "(in a transaction)";
            }
            try (Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery(SETTINGS)) {
                rs.next();
                return rs.getString(1);
            }
        }

        @Override
        public Connection getConnection(String username, String password) throws SQLException {
            throw new SQLFeatureNotSupportedException();
        }

        @Override
        public PrintWriter getLogWriter() {
            return null;
        }

        @Override
        public void setLogWriter(PrintWriter out) {}

        @Override
        public void setLoginTimeout(int seconds) {}

        @Override
        public int getLoginTimeout() {
            return 0;
        }

        @Override
        public Logger getParentLogger() throws SQLFeatureNotSupportedException {
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

    @Test
    void theLeaseConnectionGoesBackToThePoolWithTheSettingsItWasLentWithAfterALeaseStatementFailed() throws Exception {
        String schema = TestDatabase.freshSchema();
        HikariConfig hc = new HikariConfig();
        hc.setJdbcUrl(TestDatabase.jdbcUrl());
        hc.setMaximumPoolSize(6);
        CountDownLatch failed = new CountDownLatch(1);
        try (HikariDataSource pool = new HikariDataSource(hc)) {
            Watched watched = new Watched(pool);
            LeaseConfig config = LeaseConfig.builder()
                    .schema(schema)
                    .observer(new LeaseObserver() {
                        @Override
                        public void databaseError(String leaseName, Throwable cause) {
                            failed.countDown(); // reported after the failed lease connection was let go
                        }
                    })
                    .build();
            try (PgLease pglease = PgLease.create(watched, config)) {
                pglease.tryLock("reports", Duration.ofMinutes(1)).orElseThrow().close();
                try (Elector elector = pglease.elector("reports", new LeaderListener() {
                    @Override
                    public void onElected(Leadership leadership) {}

                    @Override
                    public void onRevoked(Leadership leadership) {}
                })) {
                    assertThat(failed.await(10, TimeUnit.SECONDS))
                            .as("the elector's acquire failed (the name is a lock's)")
                            .isTrue();
                    assertThat(watched.changed)
                            .as("connections pglease gave back to the pool with other settings than it was lent "
                                    + "(statement_timeout / lock_timeout / idle_in_transaction_session_timeout)")
                            .isEmpty();
                }
            }
        }
    }
}
