package dev.pglease.internal.store;

import dev.pglease.internal.sql.SessionStatements;
import dev.pglease.internal.util.FlatJson;
import dev.pglease.internal.util.Secrets;
import dev.pglease.internal.util.Timings;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Map;
import javax.sql.DataSource;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One LISTEN connection per process: turns lease-change notifications into wake-ups of the election loop, so a
 * standby takes a released lease in milliseconds instead of polling. A notification is never a fact: any login that
 * may connect can send one, with any payload. Only the lease name is taken from it, and only as a reason for the
 * loop to re-read that lease's row. While the connection is down the loop is told, and standbys fall back to waking
 * every retryPeriod.
 */
public final class NotificationListener implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(NotificationListener.class);

    /** What the notifications are for: the election loop. */
    public interface Receiver {

        /** A notification named lease {@code name}: it may have changed. Look again; believe nothing else. */
        void notice(String name);

        /** Whether the LISTEN connection is up: while it is not, standbys must not count on being woken. */
        void notificationsHealthy(boolean healthy);
    }

    private final DataSource dataSource;
    private final String channel;
    private final Receiver loop;
    private final long healthCheckNanos;
    private final int networkTimeoutMillis;
    private volatile boolean stopped;
    /** Malformed payloads ignored so far (logged at powers of two). */
    private long malformed;

    private Thread thread;
    private Connection connection;

    /**
     * @param timings how often an idle LISTEN connection is checked with {@code SELECT 1}
     *                ({@link Timings#listenHealthPeriod()}) and how long any of its round trips may take
     *                ({@link Timings#listenNetworkTimeout()})
     */
    public NotificationListener(DataSource dataSource, String channel, Receiver loop, Timings timings) {
        this.dataSource = dataSource;
        this.channel = channel;
        this.loop = loop;
        this.healthCheckNanos = timings.listenHealthPeriod().toNanos();
        this.networkTimeoutMillis =
                (int) Math.min(Integer.MAX_VALUE, timings.listenNetworkTimeout().toMillis());
    }

    public void start() {
        Thread t = new Thread(this::run, "pglease-notifications");
        t.setDaemon(true);
        thread = t;
        t.start();
    }

    private void run() {
        long backoffMillis = Timings.RECONNECT_FIRST_MILLIS;
        long lastCheck = System.nanoTime();
        while (!stopped) {
            try {
                if (connection == null) {
                    connect();
                    backoffMillis = Timings.RECONNECT_FIRST_MILLIS;
                    lastCheck = System.nanoTime();
                    loop.notificationsHealthy(true);
                }
                PGNotification[] notifications =
                        connection.unwrap(PGConnection.class).getNotifications(Timings.LISTEN_POLL_MILLIS);
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
                disconnect(false);
                sleep(backoffMillis);
                backoffMillis = Math.min(backoffMillis * 2, Timings.RECONNECT_MAX_MILLIS);
            }
        }
        disconnect(unlisten());
    }

    /**
     * Before a healthy connection goes back to the pool: stop listening, so no other borrower gets our channel, and
     * put its settings back. Returns whether that worked (otherwise the connection must not go back to a pool).
     */
    private boolean unlisten() {
        Connection c = connection;
        if (c == null) {
            return true;
        }
        try {
            SessionStatements.unlistenAll(c);
            SessionStatements.resetSessionSettings(c);
            return true;
        } catch (SQLException | RuntimeException e) {
            log.debug("pglease: UNLISTEN failed; dropping the connection", e);
            return false;
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
            SessionStatements.setWaitingSessionSettings(c); // an idle LISTEN session must not be timed out
            SessionStatements.listen(c, channel);
        } catch (SQLException | RuntimeException e) {
            drop(c, false); // it may listen, or carry the waiting settings, already
            throw e;
        }
        connection = c;
    }

    /** Takes the lease name from a payload, whatever the payload is; anything else is ignored. */
    private void dispatch(String payload) {
        String name;
        try {
            Map<String, String> change = payload == null ? null : FlatJson.parse(payload);
            name = change == null ? null : change.get("name");
        } catch (RuntimeException e) {
            malformed++;
            if (malformed == 1 || Long.bitCount(malformed) == 1) {
                log.warn(
                        "pglease: ignored {} malformed lease notification(s) on channel {}; any login that may "
                                + "connect can send one",
                        malformed,
                        channel);
            }
            return;
        }
        if (name != null) {
            loop.notice(name);
        }
    }

    /**
     * Lets the connection go: back to its pool when {@code clean} (it no longer listens and has its settings back),
     * otherwise aborted, so that a pool discards it rather than hand the next borrower the channel or the settings.
     */
    private void disconnect(boolean clean) {
        Connection c = connection;
        connection = null;
        if (c != null) {
            drop(c, clean);
        }
    }

    private static void drop(Connection c, boolean clean) {
        if (!clean) {
            try {
                c.abort(Runnable::run);
            } catch (SQLException | RuntimeException e) {
                log.debug("pglease: aborting the notification connection failed", e);
            }
        }
        try {
            c.close();
        } catch (SQLException | RuntimeException e) {
            log.debug("pglease: closing the notification connection failed", e);
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
                t.join(Timings.LISTEN_POLL_MILLIS * 4L);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
