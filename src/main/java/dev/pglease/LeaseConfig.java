package dev.pglease;

import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Timings;
import java.net.InetAddress;
import java.time.Duration;
import java.time.InstantSource;
import java.util.Objects;
import java.util.Optional;
import javax.sql.DataSource;

/**
 * Immutable, validated configuration of a {@link PgLease}. Build it with {@link #builder()}; every value is
 * checked in {@link Builder#build()} and a bad one is reported with a message that names it and the rule.
 *
 * <p>The timings follow Kubernetes' client-go leader election:
 * <ul>
 *   <li>{@code leaseDuration} ({@link #DEFAULT_LEASE_DURATION 10 s}): how long a grant lasts on the database clock after each renewal;
 *       the time a standby waits before taking over from a holder that died.</li>
 *   <li>{@code renewDeadline} ({@link #DEFAULT_RENEW_DEADLINE 6 s}): how long the holder trusts a renewal, measured on its own monotonic
 *       clock from the moment the renew statement was sent. It steps down when it passes.</li>
 *   <li>{@code retryPeriod} ({@link #DEFAULT_RETRY_PERIOD 2 s}): how often the holder renews, and the longest a standby sleeps
 *       between attempts when it can not rely on notifications.</li>
 * </ul>
 * Rules: {@code renewDeadline <= 0.9 × leaseDuration} and {@code renewDeadline > 1.2 × retryPeriod}. The gap of at
 * least a tenth of leaseDuration between the two absorbs a difference of up to 10% between the client's clock rate
 * and the database's: the holder stops acting before the database could hand the lease to anyone else. Durations
 * are sent to the database in whole milliseconds, rounded up.
 */
public final class LeaseConfig {

    /** The default {@code leaseDuration}: 10 s. */
    public static final Duration DEFAULT_LEASE_DURATION = Duration.ofSeconds(10);
    /** The default {@code renewDeadline}: 6 s. */
    public static final Duration DEFAULT_RENEW_DEADLINE = Duration.ofSeconds(6);
    /** The default {@code retryPeriod}: 2 s. */
    public static final Duration DEFAULT_RETRY_PERIOD = Duration.ofSeconds(2);

    static final Duration MIN_DURATION = Timings.MIN_DURATION;
    static final Duration MAX_DURATION = Timings.MAX_DURATION;

    private final String schema;
    private final Duration leaseDuration;
    private final Duration renewDeadline;
    private final Duration retryPeriod;
    private final String holderLabel;
    private final boolean allowUnsafeDurability;
    private final boolean fastFailover;
    private final Ticker ticker;
    private final InstantSource wallClock;
    private final LeaseObserver observer;
    private final DataSource directDataSource;
    private final Timings timings;

    private LeaseConfig(Builder b) {
        this.schema = Names.schema(b.schema);
        this.timings = Timings.of(b.leaseDuration, b.renewDeadline, b.retryPeriod);
        this.leaseDuration = timings.leaseDuration();
        this.renewDeadline = timings.renewDeadline();
        this.retryPeriod = timings.retryPeriod();
        this.holderLabel = Names.holderLabel(b.holderLabel == null ? defaultHolderLabel() : b.holderLabel);
        this.allowUnsafeDurability = b.allowUnsafeDurability;
        this.fastFailover = b.fastFailover;
        this.ticker = Objects.requireNonNull(b.ticker, "ticker must not be null");
        this.wallClock = Objects.requireNonNull(b.wallClock, "wallClock must not be null");
        this.observer = Objects.requireNonNull(b.observer, "observer must not be null");
        this.directDataSource = b.directDataSource;
    }

    private static String defaultHolderLabel() {
        String host = System.getenv("HOSTNAME");
        if (host == null || host.isBlank()) {
            try {
                host = InetAddress.getLocalHost().getHostName();
            } catch (Exception e) {
                host = "pglease";
            }
        }
        host = host.replaceAll("\\p{Cntrl}", "");
        if (host.isBlank()) {
            host = "pglease";
        }
        return host.length() > Names.MAX_HOLDER_LABEL ? host.substring(0, Names.MAX_HOLDER_LABEL) : host;
    }

    /** A builder with the defaults: schema {@code pglease}, 10 s / 6 s / 2 s, holder label = host name. */
    public static Builder builder() {
        return new Builder();
    }

    /** The default configuration. */
    public static LeaseConfig defaults() {
        return builder().build();
    }

    /** A builder pre-filled with this configuration. */
    public Builder toBuilder() {
        Builder b = new Builder();
        b.schema = schema;
        b.leaseDuration = leaseDuration;
        b.renewDeadline = renewDeadline;
        b.retryPeriod = retryPeriod;
        b.holderLabel = holderLabel;
        b.allowUnsafeDurability = allowUnsafeDurability;
        b.fastFailover = fastFailover;
        b.ticker = ticker;
        b.wallClock = wallClock;
        b.observer = observer;
        b.directDataSource = directDataSource;
        return b;
    }

    public String schema() {
        return schema;
    }

    public Duration leaseDuration() {
        return leaseDuration;
    }

    public Duration renewDeadline() {
        return renewDeadline;
    }

    public Duration retryPeriod() {
        return retryPeriod;
    }

    /** Every duration derived from the three timings, computed once when this configuration was built. */
    Timings timings() {
        return timings;
    }

    public String holderLabel() {
        return holderLabel;
    }

    public boolean allowUnsafeDurability() {
        return allowUnsafeDurability;
    }

    /** Whether a standby takes over at once when the holder's database session ends (see the builder). */
    public boolean fastFailover() {
        return fastFailover;
    }

    public Ticker ticker() {
        return ticker;
    }

    /** The wall clock that also bounds local deadlines (it keeps running while the machine is suspended). */
    public InstantSource wallClock() {
        return wallClock;
    }

    public LeaseObserver observer() {
        return observer;
    }

    /**
     * The data source for the LISTEN connection when the main one goes through a transaction pooler; empty when
     * none was configured.
     */
    public Optional<DataSource> directDataSource() {
        return Optional.ofNullable(directDataSource);
    }

    @Override
    public String toString() {
        return "LeaseConfig{schema=" + schema + ", leaseDuration=" + leaseDuration + ", renewDeadline=" + renewDeadline
                + ", retryPeriod=" + retryPeriod + ", holderLabel=" + holderLabel
                + ", allowUnsafeDurability=" + allowUnsafeDurability + ", fastFailover=" + fastFailover
                + (directDataSource == null ? "" : ", directDataSource=configured") + "}";
    }

    /** Builder for {@link LeaseConfig}. Not thread-safe. */
    public static final class Builder {
        private String schema = "pglease";
        private Duration leaseDuration = DEFAULT_LEASE_DURATION;
        private Duration renewDeadline = DEFAULT_RENEW_DEADLINE;
        private Duration retryPeriod = DEFAULT_RETRY_PERIOD;
        private String holderLabel;
        private boolean allowUnsafeDurability;
        private boolean fastFailover;
        private Ticker ticker = Ticker.SYSTEM;
        private InstantSource wallClock = InstantSource.system();
        private LeaseObserver observer = LeaseObserver.NONE;
        private DataSource directDataSource;

        private Builder() {}

        /** Schema holding the pglease tables (default {@code pglease}); a lower-case identifier. */
        public Builder schema(String schema) {
            this.schema = schema;
            return this;
        }

        public Builder leaseDuration(Duration leaseDuration) {
            this.leaseDuration = leaseDuration;
            return this;
        }

        public Builder renewDeadline(Duration renewDeadline) {
            this.renewDeadline = renewDeadline;
            return this;
        }

        public Builder retryPeriod(Duration retryPeriod) {
            this.retryPeriod = retryPeriod;
            return this;
        }

        /**
         * Human-readable start of the holder id (default: the host name). The holder id always adds the process
         * id and a random suffix, so it is unique per process incarnation.
         */
        public Builder holderLabel(String holderLabel) {
            this.holderLabel = holderLabel;
            return this;
        }

        /**
         * Accept a server on which acknowledged commits can be lost ({@code fsync=off}). Off by default: such a
         * server can hand the same token to two holders after a crash. Only for throwaway test databases.
         */
        public Builder allowUnsafeDurability(boolean allow) {
            this.allowUnsafeDurability = allow;
            return this;
        }

        /**
         * Crash takeover (off by default): when the holder's database session ends (its process crashed or was
         * killed, its connection was closed or terminated), a standby takes the lease at once with the next token
         * instead of waiting for it to expire. The holder keeps a session-level advisory lock per held lease on its
         * lease connection and registers its grant (the server records that session); standbys wait for the lock on
         * a connection of their own each, which wakes them the moment the holder's session ends, and the database
         * allows the takeover only once the registered session is gone.
         *
         * <p>What it weakens: a holder that is alive but lost its lease session can be replaced before its local
         * deadline. It stops leading the moment that session ends: it waits for the end of its own lease session on
         * a second connection, and also gives up its leadership when its lease connection fails or is replaced; its
         * fenced writes are refused by the token in any case. A paused holder keeps its session, so it is replaced
         * only when its lease expires, as without this mode. Role defaults such as {@code lock_timeout},
         * {@code statement_timeout} and the idle timeouts do not affect it: pglease sets what its own sessions need.
         * Needs a session (not transaction) pooled connection for the lease connection, one more connection per
         * lease a standby waits for, and one more per lease session of a holder (the watch of that session).
         */
        public Builder fastFailover(boolean fastFailover) {
            this.fastFailover = fastFailover;
            return this;
        }

        /** Monotonic clock for local deadlines (default {@link Ticker#SYSTEM}). */
        public Builder ticker(Ticker ticker) {
            this.ticker = ticker;
            return this;
        }

        /**
         * Wall clock that bounds every local deadline as well as the ticker (default: the system clock). The
         * monotonic ticker stops while a virtual machine or laptop is suspended; the wall clock does not, so a
         * resumed holder sees its deadline passed. Only elapsed wall time is used, never compared with the
         * database's clock.
         */
        public Builder wallClock(InstantSource wallClock) {
            this.wallClock = wallClock;
            return this;
        }

        /** Hooks for metrics and tracing (default: none). */
        public Builder observer(LeaseObserver observer) {
            this.observer = observer;
            return this;
        }

        /**
         * A data source that connects straight to PostgreSQL, bypassing a transaction pooler such as PgBouncer in
         * {@code pool_mode=transaction}, used only for the one LISTEN connection per process (default: none).
         * When the main data source is found to be transaction-pooled at start, pglease listens through this one;
         * without it, standbys poll instead and notice a released lease within retryPeriod. At start pglease checks
         * that this data source is not transaction-pooled itself and refuses it if it is.
         */
        public Builder directDataSource(DataSource directDataSource) {
            this.directDataSource = directDataSource;
            return this;
        }

        /** Validates and builds. @throws IllegalArgumentException naming the bad value and the rule */
        public LeaseConfig build() {
            return new LeaseConfig(this);
        }
    }
}
