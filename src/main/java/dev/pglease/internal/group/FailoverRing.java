package dev.pglease.internal.group;

import dev.pglease.Ticker;
import dev.pglease.internal.sql.GroupStatements;
import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Secrets;
import dev.pglease.internal.util.Timings;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Fast failover in a lease group, for one member: the ring of waits. The member waits for the advisory lock of the
 * next member in member order (wrapping around), held by that member's lease session; every member watches one, so
 * every member is watched by one. When the lock is freed, {@code group_member_gone} removes the member if its
 * registered lease session has ended, which tells every member to read the group and campaign for its shards: they
 * are taken over at once ({@code fast_failover_take_over}).
 *
 * <p>{@link #watchNext} runs on the member's thread, {@code memberLockFreed} on the watch's thread, {@link #stop} on
 * the closing one. The member watched, the key of its wait and the suspects are guarded by the member's lock.
 */
final class FailoverRing {

    /** Logs under the member engine's name, as every part of a member does. */
    private static final Logger log = LoggerFactory.getLogger(MemberEngine.class);

    private final MemberEngine.Settings s;
    private final MemberConnections connections;
    private final GroupStatements sql;
    private final MemberWatch memberWatch;
    private final MemberSchedule schedule;
    private final Ticker ticker;
    private final long leaseDurationNanos;
    private final long retryPeriodNanos;

    /** The member whose lock this member waits for (the next in member order), or null. */
    private String watched;
    /** The key of the wait for {@link #watched}'s lock (a new one per wait), or null. */
    private String watchedKey;

    private long watches;
    /**
     * Members whose lock was freed without {@code group_member_gone} removing them yet, with until when to ask again
     * at every read (ticker; a lease duration: by then their grants have expired anyway).
     */
    private final Map<String, Long> suspects = new HashMap<>();

    FailoverRing(
            MemberEngine.Settings settings,
            MemberConnections connections,
            GroupStatements sql,
            MemberWatch memberWatch,
            MemberSchedule schedule,
            Ticker ticker,
            long leaseDurationNanos,
            long retryPeriodNanos) {
        this.s = settings;
        this.connections = connections;
        this.sql = sql;
        this.memberWatch = memberWatch;
        this.schedule = schedule;
        this.ticker = ticker;
        this.leaseDurationNanos = leaseDurationNanos;
        this.retryPeriodNanos = retryPeriodNanos;
    }

    /**
     * On the member's thread, after a read at {@code now} that found the {@code live} members: waits for the lock of
     * the next member (unless it waits for it already), and asks again about the suspects.
     */
    void watchNext(List<Assignment.Member> live, long now) {
        List<Assignment.Member> ordered = new ArrayList<>(live);
        ordered.sort(Assignment.ORDER);
        String next = null;
        for (int i = 0; i < ordered.size(); i++) {
            if (ordered.get(i).id().equals(s.holder()) && ordered.size() > 1) {
                next = ordered.get((i + 1) % ordered.size()).id();
            }
        }
        String stop = null;
        String start = null;
        String startMember = null;
        List<String> toAsk;
        synchronized (schedule.lock()) {
            if (schedule.closing()) {
                return;
            }
            suspects.entrySet()
                    .removeIf(e -> now - e.getValue() >= 0 || live.stream().noneMatch(x -> x.id().equals(e.getKey())));
            toAsk = List.copyOf(suspects.keySet());
            if (!Objects.equals(next, watched)) {
                stop = watchedKey;
                watched = next;
                watchedKey = next == null ? null : s.group() + "/" + next + "#" + ++watches;
                start = watchedKey;
                startMember = next;
            }
        }
        if (stop != null) {
            memberWatch.cancel(stop);
        }
        if (start != null) {
            String member = startMember;
            String key = start;
            memberWatch.watch(
                    key, GroupStatements.memberLockName(s.group(), member), held -> memberLockFreed(member, key, held));
        }
        if (!toAsk.isEmpty()) {
            askSuspects(toAsk);
        }
    }

    /** On close: ends the wait, if any. */
    void stop() {
        String stopWatching;
        synchronized (schedule.lock()) {
            stopWatching = watchedKey;
            watched = null;
            watchedKey = null;
        }
        if (stopWatching != null) {
            memberWatch.cancel(stopWatching);
        }
    }

    /** Asks again whether the members whose lock was freed are gone; reads again in a retry period while any is left. */
    private void askSuspects(List<String> toAsk) {
        boolean removed = false;
        try (Connection c = connections.open()) {
            for (String member : toAsk) {
                if (sql.memberGone(c, s.group(), member)) {
                    removed = true;
                    logGone(member);
                    synchronized (schedule.lock()) {
                        suspects.remove(member);
                    }
                }
            }
        } catch (SQLException | RuntimeException e) {
            log.warn(
                    "pglease: {} could not check whether members of group {} are gone: {}",
                    s.holder(),
                    Names.quote(s.group()),
                    Secrets.redact(String.valueOf(e.getMessage())));
        }
        synchronized (schedule.lock()) {
            long again = ticker.read() + retryPeriodNanos;
            if (!suspects.isEmpty()) {
                schedule.readBy(again);
            }
        }
        if (removed) {
            schedule.lookAgain();
        }
    }

    private void logGone(String member) {
        log.info(
                "pglease: member {} of group {} is gone (its lease session ended); its shards are taken over",
                member,
                Names.quote(s.group()));
    }

    /**
     * On the watch's thread: the lock of {@code member} was freed ({@code held}), or nobody held it for a retry period
     * (a plain member, one that has not taken it yet, or one that ended before it did).
     */
    private void memberLockFreed(String member, String key, boolean held) {
        synchronized (schedule.lock()) {
            if (!key.equals(watchedKey) || schedule.closing()) {
                return;
            }
            if (held) {
                watched = null;
                watchedKey = null;
            }
        }
        boolean gone = false;
        try (Connection c = connections.open()) {
            // the server may list the ended session a moment longer than it holds the lock: ask again for a moment
            long until = ticker.read() + TimeUnit.MILLISECONDS.toNanos(Timings.TAKEOVER_RETRY_WINDOW_MILLIS);
            while (!(gone = sql.memberGone(c, s.group(), member))
                    && held
                    && ticker.read() - until < 0
                    && !schedule.closing()) {
                Thread.sleep(Timings.TAKEOVER_RETRY_MILLIS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (SQLException | RuntimeException e) {
            log.warn(
                    "pglease: {} could not check whether member {} of group {} is gone: {}",
                    s.holder(),
                    member,
                    Names.quote(s.group()),
                    Secrets.redact(String.valueOf(e.getMessage())));
        }
        if (gone) {
            logGone(member);
            synchronized (schedule.lock()) {
                if (key.equals(watchedKey)) {
                    watched = null;
                    watchedKey = null;
                }
            }
            schedule.lookAgain();
        } else if (held) {
            synchronized (schedule.lock()) {
                suspects.put(member, ticker.read() + leaseDurationNanos);
            }
            schedule.lookAgain();
        } else {
            watch(member, key);
        }
    }

    /** Waits again for the lock of {@code member}, unless the member watched has changed meanwhile. */
    private void watch(String member, String previousKey) {
        String key;
        synchronized (schedule.lock()) {
            if (!previousKey.equals(watchedKey) || schedule.closing()) {
                return;
            }
            key = s.group() + "/" + member + "#" + ++watches;
            watchedKey = key;
        }
        memberWatch.watch(
                key, GroupStatements.memberLockName(s.group(), member), held -> memberLockFreed(member, key, held));
    }
}
