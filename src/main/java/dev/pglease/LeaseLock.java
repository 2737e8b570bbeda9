package dev.pglease;

import dev.pglease.internal.election.Grant;
import dev.pglease.internal.sql.LockStatements;
import dev.pglease.internal.sql.SessionStatements;
import dev.pglease.internal.sql.SqlErrors;
import dev.pglease.internal.store.LeaseStore;
import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Transactions;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;
import javax.sql.DataSource;

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
 * time to live minus a tenth of it, so a process paused past that point sees {@link #isValid()} {@code false}
 * when it wakes, even if the database has not answered anyone else yet.
 *
 * <p>Lock names share the lease namespace of the schema: do not use the name of a lease an elector campaigns for.
 * Roles that are members of the schema's candidate role (not its owner) may take or extend a lock for at most one
 * day at a time, like any lease. Thread-safe.
 */
public final class LeaseLock implements LeaseGrant, AutoCloseable {

    private final DataSource dataSource;
    private final LockStatements sql;
    private final Ticker ticker;
    private final String name;
    private final String holder;
    private final long token;
    private volatile Grant leadership;
    private volatile boolean unlocked;

    private LeaseLock(
            DataSource dataSource,
            LockStatements sql,
            Ticker ticker,
            String name,
            String holder,
            long token,
            long deadline) {
        this.dataSource = dataSource;
        this.sql = sql;
        this.ticker = ticker;
        this.name = name;
        this.holder = holder;
        this.token = token;
        this.leadership = new Grant(name, holder, token, ticker, deadline);
    }

    /** Takes the lock if it is free or expired; empty when someone else holds it. Used by {@link PgLease#tryLock}. */
    static Optional<LeaseLock> tryAcquire(
            DataSource dataSource,
            LockStatements sql,
            String holder,
            Ticker ticker,
            String name,
            Duration lockAtMostFor) {
        requirePositive(lockAtMostFor, "lockAtMostFor");
        long sent = ticker.read();
        LeaseStore.Acquired answer = inTransaction(
                dataSource, "take lock " + Names.quote(name), c -> sql.take(c, name, holder, lockAtMostFor));
        if (!answer.granted()) {
            return Optional.empty();
        }
        LeaseLock lock =
                new LeaseLock(dataSource, sql, ticker, name, holder, answer.token(), deadline(sent, lockAtMostFor));
        if (!lock.isValid()) {
            // The answer came too late to be trusted (the process was paused): give the lock straight back.
            lock.unlock(Duration.ZERO);
            return Optional.empty();
        }
        return Optional.of(lock);
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

    /** The holder id of the {@link PgLease} that took the lock. */
    @Override
    public String holder() {
        return holder;
    }

    /** The fencing token: higher than every token granted before for this name. */
    @Override
    public long token() {
        return token;
    }

    /** Whether this process may still act as the lock holder: not unlocked, and its local deadline not passed. */
    @Override
    public boolean isValid() {
        return leadership.isValid();
    }

    /** Throws unless {@link #isValid()}. @throws LeaseException LEASE_LOST */
    @Override
    public void checkValid() {
        leadership.checkValid();
    }

    /** Time left before the local deadline; zero once invalid. */
    @Override
    public Duration remaining() {
        return leadership.remaining();
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
        requirePositive(lockAtMostFor, "lockAtMostFor");
        if (unlocked) {
            throw new LeaseException(
                    LeaseException.Reason.CLOSED, "lock " + Names.quote(name) + " token " + token + " was unlocked");
        }
        if (!leadership.isValid()) {
            return false;
        }
        long sent = ticker.read();
        boolean extended = inTransaction(
                dataSource, "extend lock " + Names.quote(name), c -> sql.extend(c, name, holder, token, lockAtMostFor));
        Grant current = leadership;
        if (!extended) {
            current.revoke("the database no longer lists this holder with token " + token);
            return false;
        }
        long newDeadline = deadline(sent, lockAtMostFor);
        if (ticker.read() - newDeadline >= 0) {
            current.revoke("the extension was answered after its deadline");
            return false;
        }
        if (newDeadline - current.deadline() >= 0) {
            current.extend(
                    newDeadline,
                    java.time.InstantSource.system().millis() + Math.floorDiv(newDeadline - ticker.read(), 1_000_000L));
        } else {
            Grant shorter = new Grant(name, holder, token, ticker, newDeadline);
            leadership = shorter;
            current.revoke("the lock was extended for a shorter time");
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
     * Locally valid for nine tenths of the time to live: like an elector's margin between leaseDuration and
     * renewDeadline, the last tenth absorbs a difference of up to 10% between this process's and the database's
     * clock rates, however long the lock is held.
     */
    private static long deadline(long sent, Duration ttl) {
        return sent + ttl.minus(ttl.dividedBy(10)).toNanos();
    }

    private static void requirePositive(Duration d, String what) {
        Objects.requireNonNull(d, what + " must not be null");
        if (d.toMillis() < 1) {
            throw new IllegalArgumentException(what + " must be at least 1ms, got " + d);
        }
    }

    /**
     * Runs one lease statement in its own short transaction with durable commit: the caller sees its result only
     * after COMMIT was acknowledged.
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
            throw SqlErrors.unavailable("could not " + what, e);
        }
    }

    @Override
    public String toString() {
        return "LeaseLock{name=" + name + ", holder=" + holder + ", token=" + token + ", valid=" + isValid() + "}";
    }
}
