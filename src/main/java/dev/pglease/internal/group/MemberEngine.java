package dev.pglease.internal.group;

import dev.pglease.GroupListener;
import dev.pglease.Leadership;
import dev.pglease.Ticker;
import dev.pglease.internal.sql.GroupStatements;
import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Secrets;
import dev.pglease.internal.util.Timings;
import java.sql.SQLException;
import java.util.List;
import java.util.SortedSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One member of one lease group, in this process: it joins, keeps its member row alive, reads the group when it may
 * have changed, computes the assignment ({@link Assignment}) and makes its campaigns follow it: it starts a campaign
 * for each shard the assignment gives it, and hands over, cooperatively, each shard it holds that the assignment
 * gives to another member. It never takes a shard by force: a shard another member holds is taken only once that
 * member releases it (woken by the release notification) or its lease expires.
 *
 * <p>It reads the group ({@code group_state}, one statement) when a notification names the group (a member joined or
 * left), when another member's row would expire (a member that stopped renewing has left), at least every lease
 * duration (every retry period while notifications are down).
 * Its member row is renewed by the engine's renewal of the process's leases; when that has not happened for
 * 1.25 retry periods (it holds no shard), the member renews the row alone. Reads are at most one per notice
 * interval ({@link Timings#noticeInterval()}), like the engine's re-reads of lease rows.
 *
 * <p>This class is the member's thread and what other threads ask of the member; the work is done by its parts, which
 * share the member's lock ({@link MemberSchedule}): {@link MemberRow} (the member row), {@link AssignmentFollower}
 * (reading the group, following the assignment, hand-overs), {@link FailoverRing} (fast failover) and
 * {@link UnownedTime} (how long each shard granted had no owner).
 */
public final class MemberEngine implements AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(MemberEngine.class);

    /** Who the member is: the group, its number of shards, the member's weight, priority and holder id. */
    public record Settings(String group, int shards, int weight, int priority, String holder) {}

    private final Settings s;
    private final long renewDeadlineNanos;
    private final long retryPeriodNanos;
    private final Memberships memberships;
    private final GroupEvents events;
    private final Ticker ticker;

    private final MemberSchedule schedule;
    private final MemberRow row;
    private final UnownedTime unowned;
    /** Fast failover: the ring of waits; null otherwise. */
    private final FailoverRing ring;

    private final AssignmentFollower following;

    private int failures;
    private Thread thread;

    /**
     * @param renewAlone  renews the process's member rows (and nothing else) on the lease connection, so the
     *                    engine's renewal results reach {@link #memberRenewed}
     * @param memberWatch fast failover: waits for another member's lock; null otherwise
     * @param completions runs what follows each hand-over
     */
    public MemberEngine(
            Settings settings,
            Timings timings,
            DataSource dataSource,
            GroupStatements sql,
            ShardCampaigns campaigns,
            Memberships memberships,
            Runnable renewAlone,
            GroupListener listener,
            GroupEvents events,
            MemberWatch memberWatch,
            Ticker ticker,
            Executor completions) {
        this.s = settings;
        long leaseDurationNanos = timings.leaseDuration().toNanos();
        this.renewDeadlineNanos = timings.renewDeadline().toNanos();
        this.retryPeriodNanos = timings.retryPeriod().toNanos();
        this.memberships = memberships;
        this.events = events;
        this.ticker = ticker;
        MemberConnections connections = new MemberConnections(dataSource, timings);
        this.schedule = new MemberSchedule(ticker, timings.noticeInterval().toNanos());
        this.row = new MemberRow(
                settings,
                connections,
                sql,
                timings.leaseMillis(),
                retryPeriodNanos,
                renewAlone,
                events,
                schedule,
                ticker);
        this.unowned = new UnownedTime(settings, connections, sql, events, schedule);
        this.ring = memberWatch == null
                ? null
                : new FailoverRing(
                        settings,
                        connections,
                        sql,
                        memberWatch,
                        schedule,
                        ticker,
                        leaseDurationNanos,
                        retryPeriodNanos);
        this.following = new AssignmentFollower(
                settings,
                connections,
                sql,
                campaigns,
                memberships,
                listener,
                events,
                schedule,
                ticker,
                leaseDurationNanos,
                retryPeriodNanos,
                ring,
                unowned,
                completions);
    }

    public String group() {
        return s.group();
    }

    public int shards() {
        return s.shards();
    }

    /**
     * Joins the group now (so that a refusal, e.g. another number of shards than the live members have, reaches the
     * caller), then starts the member's thread.
     *
     * @throws SQLException         from the join
     * @throws IllegalStateException when this process is already a member of the group
     */
    public void start() throws SQLException {
        if (!memberships.add(this)) {
            throw new IllegalStateException(
                    "this PgLease is already a member of group " + Names.quote(s.group()) + "; close that one first");
        }
        try {
            row.joinAfresh(); // a process joins as a new member, whatever row an earlier session left
        } catch (SQLException | RuntimeException e) {
            memberships.remove(this);
            throw e;
        }
        Thread t = new Thread(this::run, "pglease-group " + s.group());
        t.setDaemon(true);
        thread = t;
        t.start();
    }

    // ---------------------------------------------------------------- what other threads tell the member

    boolean joined() {
        return row.joined() && !schedule.closing();
    }

    /** Whether {@code suffix} (after {@code group/}) names one of this group's shards. */
    boolean isShardLease(String suffix) {
        if (suffix.length() > 6 || (suffix.length() > 1 && suffix.charAt(0) == '0')) {
            return false;
        }
        for (int i = 0; i < suffix.length(); i++) {
            if (suffix.charAt(i) < '0' || suffix.charAt(i) > '9') {
                return false;
            }
        }
        return Integer.parseInt(suffix) < s.shards();
    }

    /** A renewal sent at {@code sent} renewed this member's row, or found it expired or gone. */
    void memberRenewed(long sent, boolean renewed) {
        row.renewed(sent, renewed);
    }

    /** Something may have changed in the group (a notification named it): read it again soon. */
    void lookAgain() {
        schedule.lookAgain();
    }

    /** The shards this member owns now: granted, told to the listener, and not being handed over. */
    public SortedSet<Integer> ownedShards() {
        return following.ownedShards();
    }

    /** The grant of {@code shard}, while this member owns it (see {@link #ownedShards()}); otherwise {@code null}. */
    public Leadership leadership(int shard) {
        return following.leadership(shard);
    }

    // ---------------------------------------------------------------- the thread

    private void run() {
        while (!schedule.closing()) {
            long now = ticker.read();
            try {
                if (!row.joined()) {
                    row.join();
                    now = ticker.read();
                }
                if (schedule.due(now) && !following.readAndFollow()) {
                    row.lost(); // our row expired or was removed: join again, then look again
                } else if (following.starved()) {
                    row.joinAfresh();
                }
                unowned.measure();
                row.renewAloneIfDue();
                failures = 0;
            } catch (SQLException | RuntimeException e) {
                failures++;
                long backoff = Math.min(retryPeriodNanos * 2, (retryPeriodNanos / 2) << Math.min(failures, 4));
                schedule.readIn(backoff);
                log.warn(
                        "pglease: member {} of group {}: {}",
                        s.holder(),
                        Names.quote(s.group()),
                        Secrets.redact(String.valueOf(e.getMessage())));
            }
            if (!schedule.await(row::renewDue, unowned::nothingToMeasure)) {
                return;
            }
        }
    }

    // ---------------------------------------------------------------- shutdown

    /**
     * Leaves the group and hands every shard over cooperatively: the member row is deleted first (so the other
     * members compute the assignment without this member at once and campaign for its shards), then each shard's
     * listener is told and returns, then the shard is released and its new owner, woken by the release notification,
     * takes it. Waits at most {@code renewDeadline} for the hand-overs; a shard not released by then expires.
     */
    @Override
    public void close() {
        if (!schedule.close()) {
            return;
        }
        Thread t = thread;
        if (t != null && t != Thread.currentThread()) {
            try {
                t.join(TimeUnit.NANOSECONDS.toMillis(renewDeadlineNanos));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (ring != null) {
            ring.stop();
        }
        row.leave();
        List<CompletableFuture<Void>> handOvers = following.handOverAll();
        try {
            CompletableFuture.allOf(handOvers.toArray(new CompletableFuture<?>[0]))
                    .get(TimeUnit.NANOSECONDS.toMillis(renewDeadlineNanos), TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException | TimeoutException e) {
            log.warn(
                    "pglease: not every shard of group {} was handed over in time; the rest expire",
                    Names.quote(s.group()));
        }
        memberships.remove(this);
        events.left(s.group());
    }

    @Override
    public String toString() {
        return "MemberEngine{group=" + s.group() + ", holder=" + s.holder() + ", owned=" + ownedShards() + "}";
    }
}
