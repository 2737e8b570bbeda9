package dev.pglease.internal.store;

import dev.pglease.internal.util.Timings;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Collection;
import java.util.List;

/**
 * The storage port of the election loop: the lease statements it needs, with their own types. The JDBC
 * implementation is {@link JdbcLeaseStore}; {@link FastFailoverStore} adds crash takeover to it.
 */
public interface LeaseStore extends AutoCloseable {

    /** Outcome of an acquire attempt. {@code holder} is {@code null} when the lease is free or unknown. */
    record Acquired(boolean granted, long token, String holder, long waitMillis) {}

    /** A lease this process holds, to renew. */
    record Held(String name, long token, long ttlMillis) {}

    /** Outcome of a batch renewal: the names of the leases renewed. */
    record Renewal(List<String> renewed) {}

    /**
     * A lease row as the database shows it now: its holder ({@code null} when released), token, and whether it is
     * held (a holder, and unexpired on the database clock).
     */
    record Fact(String name, String holder, long token, boolean held) {}

    /** A lease duration in whole milliseconds, rounded up: {@link Timings#millisRoundedUp}. */
    static long ttlMillis(Duration ttl) {
        return Timings.millisRoundedUp(ttl);
    }

    Acquired acquire(String name, String holder, Duration ttl) throws SQLException;

    /** Renews all the given leases in one round trip; returns the names renewed. */
    Renewal renew(String holder, List<Held> leases) throws SQLException;

    boolean release(String name, String holder, long token) throws SQLException;

    /** Reads the rows of the named leases in one statement; a name without a row has no fact. */
    List<Fact> read(Collection<String> names) throws SQLException;

    @Override
    void close();
}
