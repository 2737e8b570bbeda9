package dev.pglease.internal.store;

import dev.pglease.internal.sql.SessionStatements;
import dev.pglease.internal.util.FlatJson;
import dev.pglease.internal.util.Secrets;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import javax.sql.DataSource;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One LISTEN connection per process: turns lease-change notifications into wake-ups of the election loop, so a
 * standby takes a released lease in milliseconds instead of polling. While the connection is down the loop is told,
 * and standbys fall back to waking every retryPeriod.
 */
public final class NotificationListener implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(NotificationListener.class);

    /** What the notifications are for: the election loop. */
    public interface Receiver {

        /** Lease {@code name} changed hands; {@code holder} is the new holder, {@code null} when it was released. */
        void leaseChanged(String name, String holder);

        /** Whether the LISTEN connection is up: while it is not, standbys must not count on being woken. */
        void notificationsHealthy(boolean healthy);
    }

    private static final int POLL_MILLIS = 250;

    private final DataSource dataSource;
    private final String channel;
    private final Receiver loop;
    private final long healthCheckNanos;
    private final int networkTimeoutMillis;
    private volatile boolean stopped;
    private Thread thread;
    private Connection connection;

    /**
     * @param healthCheckPeriod how often an idle LISTEN connection is checked with {@code SELECT 1} (PgLease passes
     *                          the lease duration: one statement per lease duration per process; a dead connection
     *                          only costs standbys the early wake-up, they still wake at the expiry they were told)
     */
    public NotificationListener(
            DataSource dataSource, String channel, Receiver loop, Duration healthCheckPeriod, Duration networkTimeout) {
        this.dataSource = dataSource;
        this.channel = channel;
        this.loop = loop;
        this.healthCheckNanos = Math.max(healthCheckPeriod.toNanos(), TimeUnit.MILLISECONDS.toNanos(500));
        this.networkTimeoutMillis = (int) Math.max(1000, Math.min(Integer.MAX_VALUE, networkTimeout.toMillis()));
    }

    public void start() {
        Thread t = new Thread(this::run, "pglease-notifications");
        t.setDaemon(true);
        thread = t;
        t.start();
    }

    private void run() {
        long backoffMillis = 100;
        long lastCheck = System.nanoTime();
        while (!stopped) {
            try {
                if (connection == null) {
                    connect();
                    backoffMillis = 100;
                    lastCheck = System.nanoTime();
                    loop.notificationsHealthy(true);
                }
                PGNotification[] notifications =
                        connection.unwrap(PGConnection.class).getNotifications(POLL_MILLIS);
                if (notifications != null) {
                    for (PGNotification n : notifications) {
                        dispatch(n.getParameter());
                    }
                }
                if (System.nanoTime() - lastCheck > healthCheckNanos) {
                    SessionStatements.ping(connection);
                    lastCheck = System.nanoTime();
                }
            } catch (SQLException | RuntimeException e) {
                if (stopped) {
                    break;
                }
                loop.notificationsHealthy(false);
                log.debug(
                        "pglease: notification connection failed: {}", Secrets.redact(String.valueOf(e.getMessage())));
                disconnect();
                sleep(backoffMillis);
                backoffMillis = Math.min(backoffMillis * 2, 5000);
            }
        }
        unlisten();
        disconnect();
    }

    /** Before a healthy connection goes back to the pool: stop listening, so no other borrower gets our channel. */
    private void unlisten() {
        Connection c = connection;
        if (c == null) {
            return;
        }
        try {
            SessionStatements.unlistenAll(c);
        } catch (SQLException | RuntimeException e) {
            log.debug("pglease: UNLISTEN failed; closing the connection anyway", e);
        }
    }

    private void connect() throws SQLException {
        Connection c = dataSource.getConnection();
        if (stopped) {
            c.close();
            throw new SQLException("the notification listener is closed");
        }
        try {
            c.setNetworkTimeout(Runnable::run, networkTimeoutMillis);
            c.setAutoCommit(true);
            SessionStatements.listen(c, channel);
        } catch (SQLException | RuntimeException e) {
            try {
                c.close();
            } catch (SQLException ignored) {
                // already failing
            }
            throw e;
        }
        connection = c;
    }

    private void dispatch(String payload) {
        try {
            Map<String, String> change = FlatJson.parse(payload);
            String name = change.get("name");
            if (name != null) {
                loop.leaseChanged(name, change.get("holder"));
            }
        } catch (IllegalArgumentException e) {
            log.warn("pglease: ignoring a malformed lease notification: {}", e.getMessage());
        }
    }

    private void disconnect() {
        Connection c = connection;
        connection = null;
        if (c != null) {
            try {
                c.close();
            } catch (SQLException e) {
                log.debug("pglease: closing the notification connection failed", e);
            }
        }
    }

    private void sleep(long millis) {
        synchronized (this) {
            try {
                if (!stopped) {
                    wait(millis);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                stopped = true;
            }
        }
    }

    @Override
    public void close() {
        stopped = true;
        synchronized (this) {
            notifyAll();
        }
        Thread t = thread;
        if (t != null) {
            try {
                t.join(POLL_MILLIS * 4L);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
