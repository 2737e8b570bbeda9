package dev.pglease.internal.election;

import dev.pglease.internal.election.CampaignState.Leading;
import dev.pglease.internal.election.CampaignState.Releasing;
import dev.pglease.internal.store.LeaseStore;
import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Secrets;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One turn of the election loop, on its thread: re-read the lease rows that notifications named (and those of live
 * locks, every lock check period), then send what the campaigns' ticks ask for: releases, one renewal that carries
 * every held lease, resume renewals, and acquires within a budget of half a retry period, so that many acquires
 * never delay the renewals of leases already held. Each answer goes back through the state machine.
 */
final class Turn {

    private static final Logger log = LoggerFactory.getLogger(Turn.class);

    private final ElectionLoop loop;
    private final long noticeIntervalNanos;
    private final long lockCheckNanos;
    private final long retryNanos;
    /** Guarded by the loop's lock: no re-read before this ticker time (unless {@link #readYet} is false). */
    private boolean readYet;

    private long readNotBefore;
    /** Consecutive failed re-reads: each doubles the wait before the next, up to twice the retry period. */
    private int readFailures;

    private long nextLockCheckAt;

    Turn(ElectionLoop loop) {
        this.loop = loop;
        this.noticeIntervalNanos = loop.timings.noticeInterval().toNanos();
        this.lockCheckNanos = loop.timings.lockCheckPeriod().toNanos();
        this.retryNanos = loop.timings.retryPeriod().toNanos();
        this.nextLockCheckAt = loop.ticker.read();
    }

    /** A statement a campaign's tick asked for. */
    private record Due(Campaign campaign, Effect send) {}

    long run() {
        Set<String> toRead;
        synchronized (loop.lock) {
            long now = loop.ticker.read();
            loop.beforeStatements();
            stepDownExpired(now);
            toRead = namesToRead(now);
        }
        if (!toRead.isEmpty()) {
            read(toRead);
        }
        long turnStart = loop.ticker.read();
        List<Due> due = new ArrayList<>();
        synchronized (loop.lock) {
            long now = loop.ticker.read();
            boolean renewing = false;
            for (Campaign c : List.copyOf(loop.campaigns.values())) {
                for (Effect send : loop.apply(c, new Event.Tick(), now)) {
                    due.add(new Due(c, send));
                    renewing |= send instanceof Effect.SendRenew;
                }
            }
            if (renewing) {
                // Every other lease held rides along in the same statement, so all of a node's leases converge on
                // one renew statement per retry period however their grants were spread in time. Renewing early is
                // safe: the new deadline counts from this statement's send time.
                for (Campaign c : loop.campaigns.values()) {
                    if (c.state instanceof Leading l && l.nextAt() - now > 0) {
                        due.add(new Due(c, new Effect.SendRenew(l.grant())));
                    } else if (c.state instanceof Releasing h && h.handingOver() != null && h.nextAt() - now > 0) {
                        due.add(new Due(c, new Effect.SendRenew(h.handingOver())));
                    }
                }
            }
        }
        List<Due> renewals = new ArrayList<>();
        for (Due d : due) {
            if (d.send() instanceof Effect.SendRelease r) {
                release(d.campaign(), r.token());
            } else if (d.send() instanceof Effect.SendRenew) {
                renewals.add(d);
            }
        }
        if (!renewals.isEmpty()) {
            renew(renewals);
        }
        for (Due d : due) {
            if (d.send() instanceof Effect.SendResume r) {
                resume(d.campaign(), r.token());
            }
        }
        long acquireBudget = retryNanos / 2;
        for (Due d : due) {
            if (d.send() instanceof Effect.SendAcquire) {
                if (loop.stopped || loop.ticker.read() - turnStart > acquireBudget) {
                    break; // the rest of the due standbys go first in the next turn, right after the renewals
                }
                acquire(d.campaign());
            }
        }
        synchronized (loop.lock) {
            long now = loop.ticker.read();
            stepDownExpired(now);
            return nextWake(now);
        }
    }

    /**
     * Under the loop's lock: the deadline event for every grant (a leader's, or one being handed over) whose local
     * deadline has passed.
     */
    void stepDownExpired(long now) {
        long nowMillis = loop.wallClock.millis();
        for (Campaign c : List.copyOf(loop.campaigns.values())) {
            Grant g = c.grant();
            if (g != null && g.deadlinePassed(now, nowMillis)) {
                loop.apply(c, new Event.Deadline(), now);
                loop.wake();
            }
        }
    }

    /** Under the loop's lock: when the loop has work next, at the latest one retry period from {@code now}. */
    long nextWake(long now) {
        long next = now + retryNanos;
        for (Campaign c : loop.campaigns.values()) {
            OptionalLong due = Transitions.dueAt(c.state, c.wanted);
            if (due.isPresent() && due.getAsLong() - next < 0) {
                next = due.getAsLong();
            }
            Grant g = c.grant();
            if (g != null && g.deadline() - next < 0) {
                next = g.deadline();
            }
        }
        long read = nextRead(now);
        return read - next < 0 ? read : next;
    }

    /**
     * Under the loop's lock: the lease names to re-read now (marked by notices, at most once per notice interval;
     * every live lock once per lock check period), clearing the marks.
     */
    private Set<String> namesToRead(long now) {
        Set<String> names = new LinkedHashSet<>();
        if (!readYet || now - readNotBefore >= 0) {
            for (Campaign c : loop.campaigns.values()) {
                if (c.lookAgain) {
                    c.lookAgain = false;
                    names.add(c.name);
                }
            }
            loop.locks.takeNames(false, names);
        }
        if (!loop.locks.isEmpty() && now - nextLockCheckAt >= 0) {
            loop.locks.takeNames(true, names);
            nextLockCheckAt = now + lockCheckNanos;
        }
        if (!names.isEmpty()) {
            readYet = true;
            readNotBefore = now + Math.min(2 * retryNanos, noticeIntervalNanos << Math.min(readFailures, 16));
        }
        return names;
    }

    /** Under the loop's lock: when the next re-read is due, or a retry period away when none is pending. */
    long nextRead(long now) {
        long next = now + retryNanos;
        boolean marked = loop.locks.anyMarked();
        for (Campaign c : loop.campaigns.values()) {
            marked |= c.lookAgain;
        }
        if (marked) {
            long at = readYet ? readNotBefore : now;
            next = at - next < 0 ? at : next;
        }
        if (!loop.locks.isEmpty() && nextLockCheckAt - next < 0) {
            next = nextLockCheckAt;
        }
        return next;
    }

    private void read(Set<String> names) {
        List<LeaseStore.Fact> facts;
        try {
            facts = loop.store.read(names);
        } catch (SQLException | RuntimeException e) {
            // Looked at again after a backoff (standbys also wake at the times they were told, leaders renew).
            synchronized (loop.lock) {
                readFailures++;
                for (String name : names) {
                    Campaign c = loop.campaigns.get(name);
                    if (c != null) {
                        c.lookAgain = true;
                    }
                    loop.locks.notice(name);
                }
            }
            databaseError(names.size() == 1 ? names.iterator().next() : names.size() + " leases", "read", e);
            return;
        }
        Map<String, LeaseStore.Fact> byName = new HashMap<>();
        for (LeaseStore.Fact f : facts) {
            byName.put(f.name(), f);
        }
        synchronized (loop.lock) {
            readFailures = 0;
            long now = loop.ticker.read();
            for (String name : names) {
                Campaign c = loop.campaigns.get(name);
                if (c != null) {
                    c.reachable = true;
                    loop.apply(c, new Event.FactRead(byName.get(name)), now);
                }
            }
        }
        loop.locks.apply(names, byName);
    }

    private void acquire(Campaign c) {
        long goneBefore;
        synchronized (loop.lock) {
            goneBefore = c.holderGone;
        }
        long sent = loop.ticker.read();
        long sentWall = loop.wallClock.millis();
        LeaseStore.Acquired answer;
        try {
            answer = loop.store.acquire(c.name, loop.holder, loop.timings.leaseDuration());
        } catch (SQLException | RuntimeException e) {
            synchronized (loop.lock) {
                c.reachable = false;
                loop.apply(c, new Event.AcquireFailed(), loop.ticker.read());
            }
            databaseError(c.name, "acquire", e);
            return;
        }
        long now = loop.ticker.read();
        loop.observer.acquireAttempted(
                c.name, answer.granted(), answer.token(), Duration.ofNanos(now - sent), Instant.ofEpochMilli(sentWall));
        synchronized (loop.lock) {
            c.reachable = true;
            c.observedHolder = answer.holder();
            loop.apply(c, new Event.AcquireAnswered(answer, sent, sentWall), now);
            if (!answer.granted() && c.holderGone != goneBefore) {
                // the holder's lock was freed while the acquire ran: its answer may predate that
                loop.apply(c, new Event.HolderGone(), now);
            }
        }
        // A grant that can not be used goes back at once: the elector may already be gone from the loop.
        if (c.state instanceof Releasing r && r.handingOver() == null) {
            release(c, r.token());
        }
    }

    private void renew(List<Due> due) {
        List<LeaseStore.Held> held = new ArrayList<>(due.size());
        for (Due d : due) {
            held.add(new LeaseStore.Held(
                    d.campaign().name, ((Effect.SendRenew) d.send()).grant().token(), loop.timings.leaseMillis()));
        }
        long sent = loop.ticker.read();
        long sentWall = loop.wallClock.millis();
        List<String> renewedNames;
        try {
            renewedNames = loop.store.renew(loop.holder, held).renewed();
        } catch (SQLException | RuntimeException e) {
            synchronized (loop.lock) {
                long now = loop.ticker.read();
                for (Due d : due) {
                    Grant g = ((Effect.SendRenew) d.send()).grant();
                    d.campaign().reachable = false;
                    loop.apply(d.campaign(), new Event.RenewFailed(g), now);
                    loop.observer.renewFailed(d.campaign().name, g.token(), false, e);
                }
            }
            databaseError(due.size() == 1 ? due.get(0).campaign().name : due.size() + " leases", "renew", e);
            return;
        }
        Set<String> renewed = renewedNames.size() == due.size() ? null : new HashSet<>(renewedNames);
        synchronized (loop.lock) {
            long now = loop.ticker.read();
            for (Due d : due) {
                Campaign c = d.campaign();
                Grant g = ((Effect.SendRenew) d.send()).grant();
                boolean ok = renewed == null || renewed.contains(c.name);
                c.reachable = true;
                if (!ok) {
                    loop.observer.renewFailed(c.name, g.token(), true, null);
                }
                loop.apply(c, new Event.RenewAnswered(g, ok, sent, sentWall), now);
            }
        }
    }

    /** One more renewal of {@code token} after a step-down at the deadline; see {@link CampaignState.SteppedDown}. */
    private void resume(Campaign c, long token) {
        long sent = loop.ticker.read();
        long sentWall = loop.wallClock.millis();
        List<String> renewed;
        try {
            renewed = loop.store
                    .renew(loop.holder, List.of(new LeaseStore.Held(c.name, token, loop.timings.leaseMillis())))
                    .renewed();
        } catch (SQLException | RuntimeException e) {
            synchronized (loop.lock) {
                c.reachable = false;
                loop.apply(c, new Event.ResumeFailed(token), loop.ticker.read());
            }
            loop.observer.renewFailed(c.name, token, false, e);
            databaseError(c.name, "renew", e);
            return;
        }
        long now = loop.ticker.read();
        boolean ok = renewed.contains(c.name);
        if (ok) {
            loop.observer.renewed(c.name, token, Duration.ofNanos(now - sent), Instant.ofEpochMilli(sentWall));
        } else {
            loop.observer.renewFailed(c.name, token, true, null);
        }
        synchronized (loop.lock) {
            c.reachable = true;
            loop.apply(c, new Event.ResumeAnswered(token, ok, sent, sentWall), now);
        }
    }

    private void release(Campaign c, long token) {
        try {
            boolean released = loop.store.release(c.name, loop.holder, token);
            if (released) {
                loop.observer.released(c.name, token);
            }
            synchronized (loop.lock) {
                c.reachable = true;
                loop.apply(c, new Event.ReleaseAnswered(token, released), loop.ticker.read());
            }
        } catch (SQLException | RuntimeException e) {
            synchronized (loop.lock) {
                c.reachable = false;
                loop.apply(c, new Event.ReleaseFailed(token), loop.ticker.read());
            }
            databaseError(c.name, "release", e);
        }
    }

    private void databaseError(String what, String statement, Throwable e) {
        log.warn(
                "pglease: {} of {} failed: {}",
                statement,
                Names.quote(what),
                Secrets.redact(String.valueOf(e.getMessage())));
        loop.observer.databaseError(what, e);
    }
}
