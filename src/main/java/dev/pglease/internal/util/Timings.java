package dev.pglease.internal.util;

import java.time.Duration;

/**
 * Every duration pglease works with, derived once from a configuration's three timings (leaseDuration,
 * renewDeadline, retryPeriod) and handed to each component: the lease store, the LISTEN connection, fast failover,
 * the election loop and locks. Each timing rule of the library is written here and nowhere else; the scheduling of
 * the election loop (when to renew, retry and wake, with jitter) builds on these values in
 * {@code internal.election.Waits}.
 *
 * <p>It lives beside the name rules ({@link Names}) because the configuration validates itself with it and every
 * layer above reads it.
 */
public final class Timings {

    /** The shortest duration pglease accepts anywhere: the database works in whole milliseconds. */
    public static final Duration MIN_DURATION = Duration.ofMillis(1);
    /** The longest duration pglease accepts anywhere (the schema refuses longer ones too). */
    public static final Duration MAX_DURATION = Duration.ofDays(1);
    /**
     * The share of every time to live a holder does not use locally: it absorbs a difference of up to 10% between
     * the holder's and the database's clock rates. An elector's renewDeadline is at most 9/10 of leaseDuration, and
     * a lock is valid locally for 9/10 of its time to live.
     */
    static final int CLOCK_RATE_MARGIN_DIVISOR = 10;
    /** What the client waits for an answer beyond renewDeadline before it drops a lease connection. */
    static final Duration NETWORK_MARGIN = Duration.ofMillis(100);
    /** The least time between two checks of an idle LISTEN connection. */
    static final Duration MIN_LISTEN_HEALTH_PERIOD = Duration.ofMillis(500);
    /** The least network timeout of the LISTEN connection (its own statements are tiny). */
    static final Duration MIN_LISTEN_NETWORK_TIMEOUT = Duration.ofSeconds(1);
    /** The longest a notification waits for the re-read of the lease rows it names. */
    static final Duration MAX_NOTICE_INTERVAL = Duration.ofMillis(50);

    /** How long the LISTEN thread waits for notifications in one call before it looks at its other work. */
    public static final int LISTEN_POLL_MILLIS = 250;
    /** The first and the longest wait before a broken LISTEN or fast-failover watch connection is opened again. */
    public static final long RECONNECT_FIRST_MILLIS = 100;

    public static final long RECONNECT_MAX_MILLIS = 5_000;
    /** How long a woken fast-failover candidate waits for the lease's advisory lock held briefly by others. */
    public static final int FAST_FAILOVER_LOCK_WAIT_MILLIS = 200;
    /**
     * How long any other fast-failover candidate waits for that lock before it takes the lock to be its holder's and
     * waits on it: other candidates hold it for a few statements, a holder for good.
     */
    public static final int FAST_FAILOVER_LOCK_PEEK_MILLIS = 20;
    /**
     * After a fast-failover standby was woken by the end of the holder's session, for how long a refused takeover
     * is tried again, and how often: the server may still list the ended backend for a moment after its locks are
     * gone.
     */
    public static final long TAKEOVER_RETRY_WINDOW_MILLIS = 300;

    public static final long TAKEOVER_RETRY_MILLIS = 5;

    private final Duration leaseDuration;
    private final Duration renewDeadline;
    private final Duration retryPeriod;
    private final long leaseMillis;
    private final Duration networkTimeout;
    private final Duration statementTimeout;
    private final Duration listenHealthPeriod;
    private final Duration listenNetworkTimeout;
    private final Duration noticeInterval;

    private Timings(Duration leaseDuration, Duration renewDeadline, Duration retryPeriod) {
        this.leaseDuration = leaseDuration;
        this.renewDeadline = renewDeadline;
        this.retryPeriod = retryPeriod;
        this.leaseMillis = millisRoundedUp(leaseDuration);
        this.networkTimeout = renewDeadline.plus(NETWORK_MARGIN);
        this.statementTimeout = networkTimeout.dividedBy(2);
        this.listenHealthPeriod = max(leaseDuration, MIN_LISTEN_HEALTH_PERIOD);
        this.listenNetworkTimeout = max(networkTimeout, MIN_LISTEN_NETWORK_TIMEOUT);
        Duration tenth = retryPeriod.dividedBy(10);
        this.noticeInterval = tenth.compareTo(MAX_NOTICE_INTERVAL) > 0 ? MAX_NOTICE_INTERVAL : max(tenth, MIN_DURATION);
    }

    /**
     * Validates the three timings of a configuration and derives the rest.
     *
     * @throws IllegalArgumentException naming the bad value and the rule: each between {@link #MIN_DURATION} and
     *                                  {@link #MAX_DURATION}, {@code renewDeadline <= 0.9 x leaseDuration} and
     *                                  {@code renewDeadline > 1.2 x retryPeriod}
     */
    public static Timings of(Duration leaseDuration, Duration renewDeadline, Duration retryPeriod) {
        checkDuration("leaseDuration", leaseDuration);
        checkDuration("renewDeadline", renewDeadline);
        checkDuration("retryPeriod", retryPeriod);
        Duration maxRenewDeadline = locallyValidFor(leaseDuration);
        if (renewDeadline.compareTo(maxRenewDeadline) > 0) {
            throw new IllegalArgumentException("renewDeadline must be at most 90% of leaseDuration (the rest is the "
                    + "margin that absorbs a difference of up to 10% between this process's and the database's clock "
                    + "rates), got leaseDuration=" + leaseDuration + " and renewDeadline=" + renewDeadline
                    + " (at most " + maxRenewDeadline + ")");
        }
        if (renewDeadline.toNanos() * 10 <= retryPeriod.toNanos() * 12) {
            throw new IllegalArgumentException(
                    "renewDeadline must be greater than 1.2 x retryPeriod, got renewDeadline="
                            + renewDeadline + " and retryPeriod=" + retryPeriod + " (1.2 x retryPeriod = "
                            + Duration.ofNanos(retryPeriod.toNanos() * 12 / 10) + ")");
        }
        return new Timings(leaseDuration, renewDeadline, retryPeriod);
    }

    /**
     * Checks that {@code value} is between {@link #MIN_DURATION} and {@link #MAX_DURATION}.
     *
     * @throws IllegalArgumentException naming {@code what} and the bounds
     */
    public static Duration checkDuration(String what, Duration value) {
        if (value == null) {
            throw new IllegalArgumentException(what + " must not be null");
        }
        if (value.compareTo(MIN_DURATION) < 0 || value.compareTo(MAX_DURATION) > 0) {
            throw new IllegalArgumentException(
                    what + " must be between " + MIN_DURATION + " and " + MAX_DURATION + ", got " + value);
        }
        return value;
    }

    /** A duration in whole milliseconds, rounded up: the database must never grant less than was asked. */
    public static long millisRoundedUp(Duration d) {
        long millis = d.toMillis();
        return d.minusMillis(millis).isZero() ? millis : millis + 1;
    }

    /**
     * How long a grant of {@code timeToLive} is trusted locally, from the moment its statement was sent: nine tenths
     * of it (see {@link #CLOCK_RATE_MARGIN_DIVISOR}). For a lock, the whole local validity; for an elector, the
     * longest renewDeadline allowed.
     */
    public static Duration locallyValidFor(Duration timeToLive) {
        return timeToLive.minus(timeToLive.dividedBy(CLOCK_RATE_MARGIN_DIVISOR));
    }

    /** How long a grant lasts on the database clock after each renewal. */
    public Duration leaseDuration() {
        return leaseDuration;
    }

    /** How long a holder trusts a renewal, from the moment it was sent, on its own clocks. */
    public Duration renewDeadline() {
        return renewDeadline;
    }

    /** How often a holder renews, and the longest a standby sleeps when it can not count on notifications. */
    public Duration retryPeriod() {
        return retryPeriod;
    }

    /** {@link #leaseDuration()} as the database is asked for it: whole milliseconds, rounded up. */
    public long leaseMillis() {
        return leaseMillis;
    }

    /**
     * How long a lease statement may block on the network before its connection is dropped and replaced:
     * renewDeadline + 100 ms.
     */
    public Duration networkTimeout() {
        return networkTimeout;
    }

    /**
     * How long the server may work on one lease statement, lock waits included: half the network timeout, so the
     * server has given up (and said so) well before the client stops waiting, and an abandoned statement can never
     * commit a grant nobody knows about.
     */
    public Duration statementTimeout() {
        return statementTimeout;
    }

    /**
     * How often an idle LISTEN connection is checked with a round trip: once per leaseDuration, at least 500 ms
     * apart (a dead connection only costs standbys the early wake-up; they still wake at the expiry they were told).
     */
    public Duration listenHealthPeriod() {
        return listenHealthPeriod;
    }

    /** The network timeout of the LISTEN connection: the lease statements' one, at least a second. */
    public Duration listenNetworkTimeout() {
        return listenNetworkTimeout;
    }

    /**
     * The least time between two re-reads of the lease rows that notifications named: a tenth of retryPeriod, at
     * most 50 ms. A storm of notifications costs at most one read per interval.
     */
    public Duration noticeInterval() {
        return noticeInterval;
    }

    /** How often the lease rows of a process's live locks are read, to learn of force releases and handoffs. */
    public Duration lockCheckPeriod() {
        return retryPeriod;
    }

    private static Duration max(Duration a, Duration b) {
        return a.compareTo(b) >= 0 ? a : b;
    }

    @Override
    public String toString() {
        return "Timings{leaseDuration=" + leaseDuration + ", renewDeadline=" + renewDeadline + ", retryPeriod="
                + retryPeriod + ", networkTimeout=" + networkTimeout + ", statementTimeout=" + statementTimeout
                + ", noticeInterval=" + noticeInterval + "}";
    }
}
