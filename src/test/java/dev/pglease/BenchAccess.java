package dev.pglease;

import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.store.JdbcLeaseStore;
import dev.pglease.internal.store.LeaseStore;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import javax.sql.DataSource;

/**
 * The lease statements exactly as the election loop runs them (the package-private {@link JdbcLeaseStore} on its
 * dedicated connection), opened up for the benchmark harness in {@code dev.pglease.bench}. Test code only.
 */
public final class BenchAccess implements AutoCloseable {

    private final JdbcLeaseStore store;
    private final String holder;
    private final List<LeaseStore.Held> held = new ArrayList<>();

    public BenchAccess(DataSource dataSource, String schema, String holder) {
        this.store = new JdbcLeaseStore(
                dataSource, new LeaseStatements(schema), Duration.ofSeconds(30), Duration.ofSeconds(15), false);
        this.holder = holder;
    }

    /**
     * A takeover of a free lease by a session opened for it, as a standby's first grant after a handoff: the
     * statement's time in microseconds, with or without the warm-up the library runs on a lease session after its
     * first refused acquire.
     */
    public static long firstGrantMicros(DataSource dataSource, String schema, String name, boolean warmUp)
            throws SQLException {
        LeaseStatements sql = new LeaseStatements(schema);
        try (java.sql.Connection previous = dataSource.getConnection()) {
            LeaseStore.Acquired g = sql.acquire(previous, name, "previous", Duration.ofSeconds(10));
            sql.release(previous, name, "previous", g.token());
        }
        try (java.sql.Connection c = dataSource.getConnection()) {
            c.createStatement().execute("SELECT 1");
            if (warmUp) {
                sql.warmUp(c, "next");
            }
            long start = System.nanoTime();
            if (!sql.acquire(c, name, "next", Duration.ofSeconds(10)).granted()) {
                throw new IllegalStateException("the takeover of free lease " + name + " was refused");
            }
            return (System.nanoTime() - start) / 1000;
        }
    }

    public String holder() {
        return holder;
    }

    /** Acquires through the library's acquire statement; returns the token, or 0 when denied. */
    public long acquire(String name, Duration ttl) throws SQLException {
        LeaseStore.Acquired a = store.acquire(name, holder, ttl);
        return a.granted() ? a.token() : 0;
    }

    public boolean release(String name, long token) throws SQLException {
        return store.release(name, holder, token);
    }

    /** Remembers a lease this holder has (e.g. seeded directly) so {@link #renewAll} renews it. */
    public void hold(String name, long token, Duration ttl) {
        held.add(new LeaseStore.Held(name, token, ttl.toMillis()));
    }

    public int holding() {
        return held.size();
    }

    /** One batch renew statement for every held lease; returns how many were renewed. */
    public int renewAll() throws SQLException {
        return store.renew(holder, held).renewed().size();
    }

    @Override
    public void close() {
        store.close();
    }
}
