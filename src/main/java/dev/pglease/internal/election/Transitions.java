package dev.pglease.internal.election;

import dev.pglease.Ticker;
import dev.pglease.internal.election.CampaignState.Closed;
import dev.pglease.internal.election.CampaignState.Leading;
import dev.pglease.internal.election.CampaignState.Releasing;
import dev.pglease.internal.election.CampaignState.Standby;
import dev.pglease.internal.election.CampaignState.SteppedDown;
import dev.pglease.internal.store.LeaseStore;
import dev.pglease.internal.util.Names;
import java.time.InstantSource;
import java.util.List;
import java.util.OptionalLong;
import java.util.concurrent.TimeUnit;

/**
 * The election state machine of one campaign: {@code (state, event, context) -> (state, effects)}. Pure: it reads
 * no clock (the context carries the readings), sends nothing and changes nothing; the loop applies the effects. The
 * rules, after client-go's {@code tryAcquireOrRenew}:
 *
 * <ul>
 *   <li>A grant or renewal counts from the ticker reading taken before its statement was sent; an answer that
 *       arrives after the deadline it would give is not trusted (a grant is given back, a renewal steps down).</li>
 *   <li>The database saying no (a refused renewal, a re-read showing another holder or token, a refused fence, the
 *       end of a fast-failover holder's session) ends the leadership at once, without a renewal.</li>
 *   <li>A notification is only a reason to re-read the lease row; the re-read is the fact.</li>
 *   <li>A campaign that is not wanted does not acquire; a leader that becomes unwanted hands over: its listener
 *       hears {@code onRevoked} while the grant is still valid, the grant is renewed as a leader's is for as long
 *       as the listener runs, and the lease is released once it returned.</li>
 * </ul>
 */
final class Transitions {

    /** The readings and settings a transition depends on besides the state and the event. */
    record Context(
            String leaseName,
            String holder,
            Waits waits,
            Ticker ticker,
            InstantSource wallClock,
            long now,
            long nowMillis,
            boolean wanted,
            boolean notificationsHealthy) {}

    /** The next state and what to do. */
    record Step(CampaignState state, List<Effect> effects) {}

    static final String DEADLINE_PASSED = "its renew deadline passed without a successful renewal";
    static final String ANSWERED_LATE = "the renewal was answered after the renew deadline";
    static final String RELEASED = "released";
    static final String HANDED_OVER = "handed over";

    private Transitions() {}

    static Step next(CampaignState s, Event e, Context x) {
        if (e instanceof Event.Tick) {
            return new Step(s, tick(s, x));
        } else if (e instanceof Event.AcquireAnswered a) {
            return acquireAnswered(s, a, x);
        } else if (e instanceof Event.AcquireFailed) {
            return s instanceof Standby st
                    ? stay(new Standby(x.waits().acquireRetry(x.now(), st.failures() + 1), st.failures() + 1))
                    : stay(s);
        } else if (e instanceof Event.RenewAnswered r) {
            return renewAnswered(s, r, x);
        } else if (e instanceof Event.RenewFailed r) {
            if (s instanceof Leading l && l.grant() == r.grant()) {
                int failures = l.failures() + 1;
                long retry = x.waits().renewRetry(x.now(), failures, l.grant().deadline());
                return stay(new Leading(l.grant(), retry, failures));
            }
            if (s instanceof Releasing h && h.handingOver() == r.grant()) {
                int failures = h.failures() + 1;
                long retry = x.waits().renewRetry(x.now(), failures, r.grant().deadline());
                return stay(new Releasing(h.token(), h.handingOver(), h.closing(), retry, failures));
            }
            return stay(s);
        } else if (e instanceof Event.ResumeAnswered r) {
            return resumeAnswered(s, r, x);
        } else if (e instanceof Event.ResumeFailed r) {
            if (!(s instanceof SteppedDown sd) || sd.token() != r.token()) {
                return stay(s);
            }
            if (!x.wanted()) {
                return stay(new Releasing(r.token(), null, false, x.waits().errorBackoff(x.now(), 1), 1));
            }
            // Wanted: the renewal of the same token is tried again until the grant expires, so a grant that
            // outlives the outage is led again with its token; past its expiry the campaign acquires afresh, and
            // the expired grant stays listed under this holder (a lease group gives such a shard back to it).
            return x.now() - sd.expiresBy() >= 0
                    ? stay(new Standby(x.waits().errorBackoff(x.now(), 2), 1))
                    : stay(new SteppedDown(sd.token(), x.waits().errorBackoff(x.now(), 2), sd.expiresBy()));
        } else if (e instanceof Event.ReleaseAnswered r) {
            if (s instanceof Releasing rel && rel.token() == r.token() && rel.handingOver() == null) {
                if (rel.closing()) {
                    return new Step(new Closed(), List.of(new Effect.Finished()));
                }
                // A refused release (the grant is gone, or the row lists this holder id under another login) is no
                // reason to acquire again at once: a retry period later, so that no answer can make a loop of them.
                return r.released()
                        ? stay(new Standby(x.now(), 0))
                        : stay(new Standby(
                                x.waits().standbyWake(x.now(), x.waits().retryPeriodNanos(), false), 0));
            }
            return stay(s);
        } else if (e instanceof Event.ReleaseFailed r) {
            if (s instanceof Releasing rel && rel.token() == r.token()) {
                int failures = rel.failures() + 1;
                long retry = x.waits().errorBackoff(x.now(), failures);
                return stay(new Releasing(rel.token(), rel.handingOver(), rel.closing(), retry, failures));
            }
            return stay(s);
        } else if (e instanceof Event.Notice) {
            boolean looks = (s instanceof Standby && x.wanted())
                    || s instanceof Leading
                    || s instanceof SteppedDown
                    || (s instanceof Releasing r && r.handingOver() != null);
            return new Step(s, looks ? List.of(new Effect.LookAgain()) : List.of());
        } else if (e instanceof Event.FactRead f) {
            return factRead(s, f.fact(), x);
        } else if (e instanceof Event.HolderGone) {
            return s instanceof Standby st && x.wanted() ? stay(new Standby(x.now(), st.failures())) : stay(s);
        } else if (e instanceof Event.Deadline) {
            if (s instanceof Leading l && l.grant().deadlinePassed(x.now(), x.nowMillis())) {
                return new Step(
                        new SteppedDown(
                                l.grant().token(),
                                x.now(),
                                x.waits().expiry(l.grant().deadline())),
                        List.of(new Effect.Revoked(l.grant(), DEADLINE_PASSED)));
            }
            if (s instanceof Releasing h
                    && h.handingOver() != null
                    && h.handingOver().deadlinePassed(x.now(), x.nowMillis())) {
                // The listener still drains, but the grant can no longer be trusted: it ends, and is given back.
                return new Step(
                        new Releasing(h.token(), null, h.closing(), x.now(), 0),
                        List.of(new Effect.Ended(h.handingOver(), DEADLINE_PASSED)));
            }
            return stay(s);
        } else if (e instanceof Event.Close) {
            return close(s, x);
        } else if (e instanceof Event.WantedChanged) {
            return wantedChanged(s, x);
        } else if (e instanceof Event.HandOverDone h) {
            if (s instanceof Releasing r && r.handingOver() == h.grant()) {
                return new Step(
                        new Releasing(r.token(), null, r.closing(), x.now(), 0),
                        List.of(new Effect.Ended(h.grant(), HANDED_OVER)));
            }
            return stay(s);
        } else if (e instanceof Event.Lost lost) {
            return lost(s, lost, x);
        }
        throw new IllegalArgumentException("unknown event " + e);
    }

    /** The statement due in state {@code s} at {@code x.now()}, if any. */
    private static List<Effect> tick(CampaignState s, Context x) {
        OptionalLong due = dueAt(s, x.wanted());
        if (due.isEmpty() || due.getAsLong() - x.now() > 0) {
            return List.of();
        }
        if (s instanceof Standby) {
            return List.of(new Effect.SendAcquire());
        } else if (s instanceof Leading l) {
            return List.of(new Effect.SendRenew(l.grant()));
        } else if (s instanceof SteppedDown sd) {
            return List.of(new Effect.SendResume(sd.token()));
        } else if (s instanceof Releasing r) {
            return r.handingOver() != null
                    ? List.of(new Effect.SendRenew(r.handingOver()))
                    : List.of(new Effect.SendRelease(r.token()));
        }
        return List.of();
    }

    /**
     * When the next statement of state {@code s} is due (ticker), or empty when none will be without an event: an
     * unwanted standby, a closed campaign. A hand-over whose listener still runs renews its grant.
     */
    static OptionalLong dueAt(CampaignState s, boolean wanted) {
        if (s instanceof Standby st) {
            return wanted ? OptionalLong.of(st.nextAt()) : OptionalLong.empty();
        } else if (s instanceof Leading l) {
            return OptionalLong.of(l.nextAt());
        } else if (s instanceof SteppedDown sd) {
            return OptionalLong.of(sd.nextAt());
        } else if (s instanceof Releasing r) {
            return OptionalLong.of(r.nextAt());
        }
        return OptionalLong.empty();
    }

    private static Step acquireAnswered(CampaignState s, Event.AcquireAnswered a, Context x) {
        LeaseStore.Acquired answer = a.answer();
        boolean standby = s instanceof Standby;
        if (!standby && !(s instanceof Closed)) {
            return stay(s); // only a standby sends an acquire, and only a close changes that while it is in flight
        }
        if (!answer.granted() && !x.holder().equals(answer.holder())) {
            if (!standby) {
                return stay(s);
            }
            long wake = x.waits()
                    .standbyWake(x.now(), TimeUnit.MILLISECONDS.toNanos(answer.waitMillis()), x.notificationsHealthy());
            return stay(new Standby(wake, 0));
        }
        long token = answer.token();
        if (!answer.granted()) {
            // A grant this process was never told about: an earlier acquire committed but its answer was lost
            // (connection reset, timeout). Give it back now rather than leave the lease unled until it expires.
            return new Step(
                    new Releasing(token, null, !standby, x.now(), 0),
                    List.of(new Effect.Log(
                            true,
                            "lease " + Names.quote(x.leaseName()) + " lists this process as holder with token " + token
                                    + ", a grant it never received; releasing it")));
        }
        boolean late = x.waits().answeredLate(a.sentAt(), a.sentAtMillis(), x.now(), x.nowMillis());
        if (!standby || late || !x.wanted()) {
            String why = !standby
                    ? "closing"
                    : late ? "the answer arrived after the renew deadline" : "the campaign is no longer wanted";
            return new Step(
                    new Releasing(token, null, !standby, x.now(), 0),
                    List.of(new Effect.Log(
                            false,
                            "lease " + Names.quote(x.leaseName()) + " token " + token
                                    + " was granted but can not be used (" + why + "); releasing it")));
        }
        return lead(token, a.sentAt(), a.sentAtMillis(), x, null);
    }

    private static Step renewAnswered(CampaignState s, Event.RenewAnswered r, Context x) {
        Grant g = r.grant();
        if (s instanceof Leading l && l.grant() == g) {
            if (!r.renewed()) {
                return new Step(new Standby(x.now(), 0), List.of(new Effect.Revoked(g, notListed(g.token()))));
            }
            if (x.waits().answeredLate(r.sentAt(), r.sentAtMillis(), x.now(), x.nowMillis())) {
                return new Step(
                        new SteppedDown(
                                g.token(), x.now(), x.waits().expiry(x.waits().deadline(r.sentAt()))),
                        List.of(new Effect.Revoked(g, ANSWERED_LATE)));
            }
            long deadline = x.waits().deadline(r.sentAt());
            return new Step(
                    new Leading(g, x.waits().nextRenewal(r.sentAt()), 0),
                    List.of(
                            new Effect.Extended(
                                    g,
                                    r.sentAt(),
                                    r.sentAtMillis(),
                                    deadline,
                                    x.waits().wallDeadline(r.sentAtMillis())),
                            new Effect.ArmDeadline(deadline)));
        }
        if (s instanceof Releasing h && h.handingOver() == g) {
            return handOverRenewed(h, r, x);
        }
        if (s instanceof SteppedDown sd && sd.token() == g.token()) {
            // Stepped down at the deadline while this renewal was in flight: renewed, the resume renewal decides
            // at once whether to lead again; refused, it is a standby.
            return stay(
                    r.renewed()
                            ? new SteppedDown(
                                    sd.token(),
                                    x.now(),
                                    x.waits().expiry(x.waits().deadline(r.sentAt())))
                            : new Standby(x.now(), 0));
        }
        if (s instanceof Standby && r.renewed()) {
            // Stepped down while the renewal was in flight, yet the database still lists us: give it back.
            return stay(new Releasing(g.token(), null, false, x.now(), 0));
        }
        return stay(s);
    }

    /**
     * A renewal of a grant being handed over: in time, the grant is extended and the listener drains on; refused, the
     * database no longer lists it (nothing to release); late, it can no longer be trusted and is given back.
     */
    private static Step handOverRenewed(Releasing h, Event.RenewAnswered r, Context x) {
        Grant g = r.grant();
        if (!r.renewed()) {
            return new Step(new Standby(x.now(), 0), List.of(new Effect.Ended(g, notListed(g.token()))));
        }
        if (x.waits().answeredLate(r.sentAt(), r.sentAtMillis(), x.now(), x.nowMillis())) {
            return new Step(
                    new Releasing(h.token(), null, h.closing(), x.now(), 0),
                    List.of(new Effect.Ended(g, ANSWERED_LATE)));
        }
        long deadline = x.waits().deadline(r.sentAt());
        return new Step(
                new Releasing(h.token(), g, h.closing(), x.waits().nextRenewal(r.sentAt()), 0),
                List.of(
                        new Effect.Extended(
                                g,
                                r.sentAt(),
                                r.sentAtMillis(),
                                deadline,
                                x.waits().wallDeadline(r.sentAtMillis())),
                        new Effect.ArmDeadline(deadline)));
    }

    private static Step resumeAnswered(CampaignState s, Event.ResumeAnswered r, Context x) {
        if (!(s instanceof SteppedDown sd) || sd.token() != r.token()) {
            return stay(s); // left while the statement was in flight: the close turned it into a release
        }
        if (!r.renewed()) {
            return stay(new Standby(x.now(), 0));
        }
        if (!x.wanted() || x.waits().answeredLate(r.sentAt(), r.sentAtMillis(), x.now(), x.nowMillis())) {
            return stay(new Releasing(r.token(), null, false, x.now(), 0));
        }
        return lead(
                r.token(),
                r.sentAt(),
                r.sentAtMillis(),
                x,
                new Effect.Log(
                        false,
                        x.holder() + " leads lease " + Names.quote(x.leaseName()) + " again with token " + r.token()
                                + ": the renewal after its step-down was answered in time"));
    }

    private static Step lead(long token, long sentAt, long sentAtMillis, Context x, Effect.Log log) {
        long deadline = x.waits().deadline(sentAt);
        Grant g = new Grant(
                x.leaseName(),
                x.holder(),
                token,
                x.ticker(),
                x.wallClock(),
                x.now(),
                deadline,
                x.waits().wallDeadline(sentAtMillis));
        Leading next = new Leading(g, x.waits().nextRenewal(sentAt), 0);
        return log == null
                ? new Step(next, List.of(new Effect.ArmDeadline(deadline), new Effect.Elected(g)))
                : new Step(next, List.of(log, new Effect.ArmDeadline(deadline), new Effect.Elected(g)));
    }

    private static Step factRead(CampaignState s, LeaseStore.Fact fact, Context x) {
        boolean mine = fact != null && fact.held() && x.holder().equals(fact.holder());
        if (s instanceof Standby st) {
            boolean mayBeMine = fact == null || !fact.held() || mine;
            return x.wanted() && mayBeMine ? stay(new Standby(x.now(), st.failures())) : stay(s);
        } else if (s instanceof Leading l) {
            if (mine && fact.token() == l.grant().token()) {
                return stay(s);
            }
            return new Step(
                    new Standby(x.now(), 0),
                    List.of(new Effect.Revoked(l.grant(), notListed(l.grant().token()) + " (" + describe(fact) + ")")));
        } else if (s instanceof SteppedDown sd) {
            return mine && fact.token() == sd.token() ? stay(s) : stay(new Standby(x.now(), 0));
        } else if (s instanceof Releasing h && h.handingOver() != null) {
            Grant g = h.handingOver();
            if (mine && fact.token() == g.token()) {
                return stay(s);
            }
            return new Step(
                    new Standby(x.now(), 0),
                    List.of(new Effect.Ended(g, notListed(g.token()) + " (" + describe(fact) + ")")));
        }
        return stay(s);
    }

    private static Step close(CampaignState s, Context x) {
        if (s instanceof Standby) {
            return new Step(new Closed(), List.of(new Effect.Finished()));
        } else if (s instanceof Leading l) {
            return new Step(
                    new Releasing(l.grant().token(), null, true, x.now(), 0),
                    List.of(new Effect.Revoked(l.grant(), RELEASED)));
        } else if (s instanceof SteppedDown sd) {
            return stay(new Releasing(sd.token(), null, true, x.now(), 0));
        } else if (s instanceof Releasing r) {
            Releasing closing = new Releasing(r.token(), null, true, x.now(), r.failures());
            return r.handingOver() == null
                    ? stay(closing)
                    : new Step(closing, List.of(new Effect.Ended(r.handingOver(), RELEASED)));
        }
        return stay(s);
    }

    private static Step wantedChanged(CampaignState s, Context x) {
        if (x.wanted()) {
            return s instanceof Standby st ? stay(new Standby(x.now(), st.failures())) : stay(s);
        }
        if (s instanceof Leading l) {
            // the grant is renewed on the leader's schedule while the listener drains
            return new Step(
                    new Releasing(l.grant().token(), l.grant(), false, l.nextAt(), l.failures()),
                    List.of(new Effect.HandOver(l.grant())));
        } else if (s instanceof SteppedDown sd) {
            return stay(new Releasing(sd.token(), null, false, x.now(), 0));
        }
        return stay(s);
    }

    private static Step lost(CampaignState s, Event.Lost lost, Context x) {
        if (s instanceof Leading l && l.grant().token() == lost.token()) {
            return new Step(new Standby(x.now(), 0), List.of(new Effect.Revoked(l.grant(), lost.reason())));
        } else if (s instanceof SteppedDown sd && sd.token() == lost.token()) {
            return stay(new Standby(x.now(), 0));
        } else if (s instanceof Releasing r && r.handingOver() != null && r.token() == lost.token()) {
            return new Step(
                    new Releasing(r.token(), null, r.closing(), x.now(), 0),
                    List.of(new Effect.Ended(r.handingOver(), lost.reason())));
        }
        return stay(s);
    }

    static String notListed(long token) {
        return "the database no longer lists this holder with token " + token;
    }

    private static String describe(LeaseStore.Fact fact) {
        if (fact == null) {
            return "no such lease";
        } else if (fact.holder() == null) {
            return "it was released, token " + fact.token();
        } else if (!fact.held()) {
            return "it expired, token " + fact.token();
        }
        return "held by " + fact.holder() + " with token " + fact.token();
    }

    private static Step stay(CampaignState s) {
        return new Step(s, List.of());
    }
}
