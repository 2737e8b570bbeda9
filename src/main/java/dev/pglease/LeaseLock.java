package dev.pglease;

import dev.pglease.internal.election.Engine;
import dev.pglease.internal.election.Grant;
import dev.pglease.internal.election.LiveLocks;
import dev.pglease.internal.sql.LockStatements;
import dev.pglease.internal.sql.SessionStatements;
import dev.pglease.internal.sql.SqlErrors;
import dev.pglease.internal.store.LeaseStore;
import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Timings;
import dev.pglease.internal.util.Transactions;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.time.InstantSource;
import java.util.Objects;
import java.util.Optional;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A single-shot lock on a lease, taken by {@link PgLease#tryLock(String, Duration)}: no election loop and no
 * automatic renewal. It is held until {@link #unlock(Duration)}, or until its time to live runs out, and it is a
 * {@link LeaseGrant} like an elector's {@link Leadership}: pass the lock itself to the fencing API. This is what task schedulers
 * such as ShedLock need: take the lock for at most {@code lockAtMostFor}, extend it while working, and on
 * unlock keep it until {@code lockAtLeastFor} has passed.
 *
 * <p>Every operation is one conditional statement on the lease row, reading time with {@code clock_timestamp()}:
 * taking the lock is the same statement an elector campaigns with (the token grows by one whenever the holder
 * changes); extending and unlocking succeed only while this holder still has the row with this token and it has
 * not expired. Locally the lock is valid until the ticker reading taken before the statement was sent plus the
 * time to live minus a tenth of it (on the configured wall clock too), so a process paused past that point sees
 * {@link #isValid()} {@code false} when it wakes, even if the database has not answered anyone else yet.
 *
 * <p>The lock also learns of what happens to it in the database: its {@code PgLease} reads the rows of its live
 * locks every retryPeriod, and soon after a notification names one. When the database no longer lists the lock with
 * its holder and token (an operator's force release or handoff, or its expiry), and when a fence with it is refused,
 * its validity ends at once ({@link #checkValid()} throws LEASE_LOST).
 *
 * <p>A lock has a holder identity of its own ({@link #holder()}: the {@code PgLease}'s holder id followed by
 * {@code #lock}), so an elector of the same process can never take it for its own grant. Lock names share the lease
 * namespace of the schema: a {@code PgLease} refuses an elector and a lock of the same name, and one process holds a
 * lock of one name at most once. Locks are taken for 1 ms to one day at a time. Thread-safe.
 *
 * <p>{@link PgLease#close()} ends every lock of the {@code PgLease} that is still held ({@link #isValid()} turns
 * {@code false}, with the reason "its PgLease was closed") and releases it in the database.
 */
public final class LeaseLock implements LeaseGrant, AutoCloseable {

    private static final Logger log = LoggerFactory.getLogger(LeaseLock.class);

    private final DataSource dataSource;
    private final LockStatements sql;
    private final LiveLocks live;
    private final Ticker ticker;
    private final InstantSource wallClock;
    private final String name;
    private final String holder;
    private final long token;
    private volatile Grant leadership;
    private volatile boolean unlocked;
    /** Why the database no longer lists this lock, once the engine found out; {@code null} until then. */
    private volatile String lostBecause;
    /** Ends the engine's checks of this lock. */
    private volatile Runnable stopChecks = () -> {};

    private LeaseLock(
            DataSource dataSource,
            LockStatements sql,
            LiveLocks live,
            Ticker ticker,
            InstantSource wallClock,
            String name,
            String holder,
            long token,
            long sent,
            long sentMillis,
            Duration ttl) {
        this.dataSource = dataSource;
        this.sql = sql;
        this.live = live;
        this.ticker = ticker;
        this.wallClock = wallClock;
        this.name = name;
        this.holder = holder;
        this.token = token;
        this.leadership = grant(sent, sentMillis, ttl);
    }

    /**
     * Takes the lock if it is free or expired; empty when someone else holds it, or this process does already.
     * Used by {@link PgLease#tryLock}.
     *
     * @throws IllegalStateException when the name is an elector's or a lease group's (of this or another process)
     */
    static Optional<LeaseLock> tryAcquire(
            DataSource dataSource,
            LockStatements sql,
            Engine engine,
            LeaseConfig config,
            String name,
            Duration lockAtMostFor) {
        Timings.checkDuration("lockAtMostFor", lockAtMostFor);
        LiveLocks live = engine.loop().locks();
        if (!live.reserve(name)) {
            return Optional.empty(); // this process holds it already
        }
        String holder = engine.lockHolder();
        boolean held = false;
        try {
            long sent = config.ticker().read();
            long sentMillis = config.wallClock().millis();
            LeaseStore.Acquired answer = inTransaction(
                    dataSource, "take lock " + Names.quote(name), c -> sql.take(c, name, holder, lockAtMostFor));
            if (!answer.granted() && holder.equals(answer.holder()) && !live.knows(name, answer.token())) {
                // A take of this process committed but its answer was lost: nobody acts on that grant. Give it back
                // and take the lock once more.
                long orphan = answer.token();
                log.info(
                        "pglease: lock {} is held by this process with token {}, which it was never told of (a take "
                                + "whose answer was lost): giving it back",
                        Names.quote(name),
                        orphan);
                inTransaction(
                        dataSource,
                        "give back lock " + Names.quote(name),
                        c -> sql.unlock(c, name, holder, orphan, Duration.ZERO));
                sent = config.ticker().read();
                sentMillis = config.wallClock().millis();
                answer = inTransaction(
                        dataSource, "take lock " + Names.quote(name), c -> sql.take(c, name, holder, lockAtMostFor));
            }
            if (!answer.granted()) {
                // Held by another process, or still by this one: unlocked but kept until lockAtLeastFor has passed.
                return Optional.empty();
            }
            LeaseLock lock = new LeaseLock(
                    dataSource,
                    sql,
                    live,
                    config.ticker(),
                    config.wallClock(),
                    name,
                    holder,
                    answer.token(),
                    sent,
                    sentMillis,
                    lockAtMostFor);
            if (!lock.isValid()) {
                // The answer came too late to be trusted (the process was paused): give the lock straight back.
                lock.unlock(Duration.ZERO);
                return Optional.empty();
            }
            Runnable stop = live.hold(name, holder, answer.token(), lock::lost, lock::closed);
            held = true;
            if (stop == null) {
                lock.closed("its PgLease was closed while the lock was taken");
                throw new LeaseException(LeaseException.Reason.CLOSED, "this PgLease is closed");
            }
            lock.stopChecks = stop;
            return Optional.of(lock);
        } finally {
            if (!held) {
                live.unreserve(name);
            }
        }
    }

    /** The lock (lease) name. */
    @Override
    public String leaseName() {
        return name;
    }

    /**
     * The former name of {@link #leaseName()}.
     *
     * @deprecated use {@link #leaseName()}, the name every {@link LeaseGrant} has
     */
    @Deprecated
    public String name() {
        return leaseName();
    }

    /** The holder id of the lock: the {@link PgLease#holderId()} of the {@code PgLease} that took it, and {@code #lock}. */
    @Override
    public String holder() {
        return holder;
    }

    /** The fencing token: higher than every token granted before for this name. */
    @Override
    public long token() {
        return token;
    }

    /**
     * Whether this process may still act as the lock holder: not unlocked, its local deadline not passed, and the
     * database not found to list it no more.
     */
    @Override
    public boolean isValid() {
        return lostBecause == null && leadership.isValid();
    }

    /** Throws unless {@link #isValid()}. @throws LeaseException LEASE_LOST */
    @Override
    public void checkValid() {
        Grant current = leadership;
        String lost = lostBecause;
        if (lost != null) {
            current.revoke(lost);
        }
        current.checkValid();
    }

    /** Time left before the local deadline; zero once invalid. */
    @Override
    public Duration remaining() {
        return lostBecause == null ? leadership.remaining() : Duration.ZERO;
    }

    /**
     * The lock's current grant as a {@link Leadership}. After an extension that shortened the lock, this is a new
     * object and the previous one is no longer valid.
     *
     * @deprecated the lock is a {@link LeaseGrant} itself: pass the lock to {@link PgLease#inFencedTransaction} and
     *             {@link PgLease#fenceTransaction}
     */
    @Deprecated
    public Leadership leadership() {
        return leadership;
    }

    /**
     * Extends the lock so that it expires {@code lockAtMostFor} from now (this may also shorten it). Succeeds only
     * while this holder still has the lock in the database and it has not expired there; once it returns
     * {@code false} the lock is lost for good (the local validity ends too).
     *
     * @throws LeaseException DATABASE_UNAVAILABLE when the statement failed (the lock stays as it was); CLOSED after
     *                        {@link #unlock}
     */
    public synchronized boolean extend(Duration lockAtMostFor) {
        Timings.checkDuration("lockAtMostFor", lockAtMostFor);
        if (unlocked) {
            throw new LeaseException(
                    LeaseException.Reason.CLOSED, "lock " + Names.quote(name) + " token " + token + " was unlocked");
        }
        if (!isValid()) {
            return false;
        }
        long sent = ticker.read();
        long sentMillis = wallClock.millis();
        boolean extended = inTransaction(
                dataSource, "extend lock " + Names.quote(name), c -> sql.extend(c, name, holder, token, lockAtMostFor));
        Grant current = leadership;
        if (!extended) {
            lost("the database no longer lists this holder with token " + token);
            return false;
        }
        Grant next = grant(sent, sentMillis, lockAtMostFor);
        if (next.deadlinePassed()) {
            current.revoke("the extension was answered after its deadline");
            stopChecks.run();
            return false;
        }
        if (next.deadline() - current.deadline() >= 0) {
            current.extend(next.deadline(), next.wallDeadline());
        } else {
            leadership = next;
            current.revoke("the lock was extended for a shorter time");
        }
        String lost = lostBecause;
        if (lost != null) {
            leadership.revoke(lost); // the engine found it lost while the extension was on its way
            return false;
        }
        return true;
    }

    /**
     * Unlocks: local validity ends at once; in the database the lock is released now, or, when less than
     * {@code keepAtLeast} has passed since it was taken or last extended (database clock), kept until then so
     * that nobody takes it earlier. Idempotent.
     *
     * @return whether the database still listed this holder with this token (false when the lock had expired or
     *         was unlocked before)
     * @throws LeaseException DATABASE_UNAVAILABLE when the statement failed; the lock then expires on its own
     */
    public synchronized boolean unlock(Duration keepAtLeast) {
        Objects.requireNonNull(keepAtLeast, "keepAtLeast must not be null");
        if (keepAtLeast.isNegative()) {
            throw new IllegalArgumentException("keepAtLeast must not be negative, got " + keepAtLeast);
        }
        leadership.revoke("unlocked");
        if (!unlocked && !keepAtLeast.isZero()) {
            live.keep(name, token); // known before the checks stop: a take of this process leaves it alone
        }
        stopChecks.run();
        if (unlocked) {
            return false;
        }
        unlocked = true;
        return inTransaction(
                dataSource, "unlock " + Names.quote(name), c -> sql.unlock(c, name, holder, token, keepAtLeast));
    }

    /** Unlocks at once ({@code unlock(Duration.ZERO)}). */
    @Override
    public void close() {
        unlock(Duration.ZERO);
    }

    /**
     * The engine found that the database no longer lists this lock (or a fence with it was refused): it is no longer
     * valid. Called from the engine's thread; never blocks.
     */
    private void lost(String reason) {
        lostBecause = reason;
        leadership.revoke(reason);
        stopChecks.run();
    }

    /**
     * The {@code PgLease} that took this lock was closed: the lock ends at once and is given back (released now, not
     * kept for a {@code lockAtLeastFor}: whoever runs next does not have to wait for a process that stopped).
     */
    private void closed(String reason) {
        lost(reason);
        try {
            unlock(Duration.ZERO);
        } catch (LeaseException e) {
            // the lock expires on its own
            log.warn("pglease: could not give lock {} back on close: {}", Names.quote(name), e.getMessage());
        }
    }

    /**
     * A grant valid locally for nine tenths of {@code ttl} from a statement sent at {@code sent} (ticker) and
     * {@code sentMillis} (wall clock): like an elector's margin between leaseDuration and renewDeadline, the last
     * tenth absorbs a difference of up to 10% between this process's and the database's clock rates, however long
     * the lock is held.
     */
    private Grant grant(long sent, long sentMillis, Duration ttl) {
        Duration valid = Timings.locallyValidFor(ttl);
        return new Grant(
                name,
                holder,
                token,
                ticker,
                sent + valid.toNanos(),
                wallClock,
                sentMillis + Math.floorDiv(valid.toNanos(), 1_000_000L));
    }

    /**
     * Runs one lease statement in its own short transaction with durable commit: the caller sees its result only
     * after COMMIT was acknowledged. A name already used as another kind of lease is refused with a clear error.
     */
    private static <T> T inTransaction(DataSource dataSource, String what, FencedWork<T> statement) {
        try (Connection c = dataSource.getConnection()) {
            boolean autoCommit = c.getAutoCommit();
            c.setAutoCommit(false);
            try {
                SessionStatements.raiseSynchronousCommitLocally(c);
                T result = statement.execute(c);
                c.commit();
                return result;
            } catch (SQLException | RuntimeException | Error e) {
                Transactions.rollbackQuietly(c, e);
                throw e;
            } finally {
                Transactions.restoreAutoCommit(c, autoCommit);
            }
        } catch (SQLException e) {
            if (SqlErrors.kindMismatch(e)) {
                throw new IllegalStateException(
                        "pglease: could not " + what + ": the name is used by an elector or a lease group, and a "
                                + "lock must not share a name with them (" + e.getMessage() + ")",
                        e);
            }
            throw SqlErrors.unavailable("could not " + what, e);
        }
    }

    @Override
    public String toString() {
        return "LeaseLock{name=" + name + ", holder=" + holder + ", token=" + token + ", valid=" + isValid() + "}";
    }
}
