package dev.pglease.internal.group;

import dev.pglease.Ticker;
import dev.pglease.internal.sql.GroupStatements;
import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Secrets;
import java.sql.Connection;
import java.sql.SQLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One member's row in its group: joining (again, once the row expired or was removed), hearing from the engine's
 * renewals of the process's leases whether they renewed it, renewing it alone when they have not for 1.25 retry
 * periods (the member holds no shard), and leaving. Joins, renewals alone and the leave run on the member's thread
 * (the leave on the closing one); {@link #renewed} runs on the lease connection's thread. Both fields are volatile,
 * guarded by no lock.
 */
final class MemberRow {

    /** Logs under the member engine's name, as every part of a member does. */
    private static final Logger log = LoggerFactory.getLogger(MemberEngine.class);

    private final MemberEngine.Settings s;
    private final MemberConnections connections;
    private final GroupStatements sql;
    private final long ttlMillis;
    private final long retryPeriodNanos;
    private final Runnable renewAlone;
    private final GroupEvents events;
    private final MemberSchedule schedule;
    private final Ticker ticker;

    private volatile boolean joined;
    /** When the last renewal that renewed the row was sent (ticker). */
    private volatile long renewedAt;

    /**
     * @param ttlMillis  the time to live of the row
     * @param renewAlone renews the process's member rows (and nothing else) on the lease connection, so the engine's
     *                   renewal results reach {@link #renewed}
     */
    MemberRow(
            MemberEngine.Settings settings,
            MemberConnections connections,
            GroupStatements sql,
            long ttlMillis,
            long retryPeriodNanos,
            Runnable renewAlone,
            GroupEvents events,
            MemberSchedule schedule,
            Ticker ticker) {
        this.s = settings;
        this.connections = connections;
        this.sql = sql;
        this.ttlMillis = ttlMillis;
        this.retryPeriodNanos = retryPeriodNanos;
        this.renewAlone = renewAlone;
        this.events = events;
        this.schedule = schedule;
        this.ticker = ticker;
    }

    boolean joined() {
        return joined;
    }

    /** Joins the group (inserts or refreshes the row), then asks the member to read the group. */
    void join() throws SQLException {
        long sent = ticker.read();
        GroupStatements.Joined j;
        try (Connection c = connections.open()) {
            j = sql.join(c, s.group(), s.holder(), s.shards(), s.weight(), s.priority(), ttlMillis);
        }
        renewedAt = sent;
        joined = true;
        events.joined(s.group(), j.shards());
        schedule.lookAgain();
        log.debug(
                "pglease: {} joined group {} ({} shards) at {}",
                s.holder(),
                Names.quote(s.group()),
                j.shards(),
                j.joinedAt());
    }

    /** A read of the group found the row expired or removed: join again at once, then look again. */
    void lost() {
        joined = false;
        schedule.wake();
    }

    /**
     * Leaves and joins again, with a new join time: the other members count a member by its id and join time, so
     * one whose claim they dropped is counted again (it holds no shard, so leaving moves nothing). A member's first
     * join is one too: a row left under its id before it started is not its claim.
     */
    void joinAfresh() throws SQLException {
        leave();
        joined = false;
        join();
    }

    /** A renewal sent at {@code sent} renewed the row, or found it expired or gone. */
    void renewed(long sent, boolean renewed) {
        if (renewed) {
            if (sent - renewedAt > 0) {
                renewedAt = sent;
            }
        } else if (!schedule.closing()) {
            log.info(
                    "pglease: the member row of {} in group {} expired; joining again",
                    s.holder(),
                    Names.quote(s.group()));
            joined = false;
            schedule.wake();
        }
    }

    /** When the row is to be renewed alone unless the engine's renewal renews it first (ticker). */
    long renewDue() {
        return renewedAt + retryPeriodNanos + retryPeriodNanos / 4;
    }

    /** On the member's thread: renews the row alone when the engine's renewals have not for 1.25 retry periods. */
    void renewAloneIfDue() {
        if (joined && ticker.read() - renewedAt >= retryPeriodNanos + retryPeriodNanos / 4) {
            renewAlone.run();
        }
    }

    /** Deletes the row; when that fails, the row expires on its own. */
    void leave() {
        try (Connection c = connections.open()) {
            sql.leave(c, s.group(), s.holder());
        } catch (SQLException | RuntimeException e) {
            log.warn(
                    "pglease: {} could not leave group {} (its member row expires on its own): {}",
                    s.holder(),
                    Names.quote(s.group()),
                    Secrets.redact(String.valueOf(e.getMessage())));
        }
    }
}
