package dev.pglease.internal.election;

/**
 * Where one campaign for a lease stands, as the election loop sees it. Immutable: {@link Transitions} maps a state
 * and an event to the next state and what to do about it. Times are ticker readings (monotonic nanoseconds).
 *
 * <p>The state diagram, one edge per line ({@code from --what--> to}); {@code TransitionTableTest} checks that it
 * names exactly the permitted subclasses below and exactly the changes of state its table of transitions makes:
 * <pre>
 * Standby     --granted in time-->                                           Leading
 * Standby     --granted late or unwanted, or a grant it no longer uses-->    Releasing
 * Standby     --closed-->                                                    Closed
 * Leading     --renewal answered late, or renew deadline passed-->           SteppedDown
 * Leading     --renewal refused, or lost by a fact, a fence or its session--> Standby
 * Leading     --unwanted (hand-over), or closed-->                           Releasing
 * SteppedDown --resume renewal answered in time-->                           Leading
 * SteppedDown --resume refused or failing past the grant's expiry, or lost--> Standby
 * SteppedDown --resume late, failed while unwanted, unwanted, or closed-->   Releasing
 * Releasing   --released (campaign goes on), or a handed-over grant lost-->  Standby
 * Releasing   --released after close-->                                      Closed
 * Closed      --granted after close-->                                       Releasing
 * </pre>
 * A transition to the same state (a denied acquire, a renewal in time, a notice) is not drawn.
 */
public sealed interface CampaignState {

    /**
     * Campaigns for the lease: when wanted, acquires it at {@code nextAt} (or at once when a notification or a
     * re-read says it may be free).
     *
     * @param failures consecutive failed acquires
     */
    record Standby(long nextAt, int failures) implements CampaignState {}

    /**
     * Holds the lease with {@code grant}: renews it at {@code nextAt}, never past its local deadline.
     *
     * @param failures consecutive failed renewals
     */
    record Leading(Grant grant, long nextAt, int failures) implements CampaignState {}

    /**
     * Stepped down at its local deadline (a renewal answered late, or not yet) although the database may still list
     * it with {@code token}: one more renewal of that token, at {@code nextAt}, decides whether it leads again with
     * it, gives it back, or is a standby; while that renewal fails (the database out of reach), it is tried again
     * until {@code expiresBy}, when the database lists the grant no longer by the last renewal this process heard
     * answered (a failed renewal may still have committed: retried without end, such renewals could keep a lease
     * nobody leads). A starved process thus pauses its leadership instead of handing it over.
     */
    record SteppedDown(long token, long nextAt, long expiresBy) implements CampaignState {}

    /**
     * Gives {@code token} back at {@code nextAt}. While {@code handingOver} is set, the grant is still valid and its
     * listener's {@code onRevoked} runs (it finishes its in-flight work): the grant is renewed at {@code nextAt} as a
     * leader's is, and the release waits for the listener to return. A handed-over grant that the database no longer
     * lists ends, with nothing to give back; one whose deadline passes ends and is given back at once.
     *
     * @param closing  whether the campaign ends once released (else it is a standby again)
     * @param failures consecutive failed releases (renewals, while handing over)
     */
    record Releasing(long token, Grant handingOver, boolean closing, long nextAt, int failures)
            implements CampaignState {}

    /** The campaign has ended: it neither campaigns nor holds anything. */
    record Closed() implements CampaignState {}
}
