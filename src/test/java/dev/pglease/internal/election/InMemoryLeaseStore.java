package dev.pglease.internal.election;

import dev.pglease.internal.store.LeaseStore;
import java.sql.SQLException;
import java.sql.SQLTransientConnectionException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The lease protocol's rules over a map, timed by a {@link FakeTicker}, for driving the election state machine
 * step by step. Not a stand-in for SQL behaviour: the statements themselves are tested against PostgreSQL.
 */
final class InMemoryLeaseStore implements LeaseStore {

    record Row(String holder, long token, long expiresAt) {}

    final Map<String, Row> rows = new HashMap<>();
    final List<String> statements = new ArrayList<>();
    private final FakeTicker clock;
    boolean down;
    /** Runs inside the next statement, e.g. to move the clock as if the process were paused mid-call. */
    Runnable duringNextStatement;

    InMemoryLeaseStore(FakeTicker clock) {
        this.clock = clock;
    }

    /** The next acquire takes effect, then its answer is lost (the connection breaks after the commit). */
    boolean loseNextAcquireAnswer;

    /** Every renewal takes effect, then its answer is lost (the connection breaks after the commit). */
    boolean loseRenewAnswers;

    /** How long every statement takes, on the fake clock. */
    Duration latency = Duration.ZERO;

    private void enter(String statement) throws SQLException {
        statements.add(statement);
        clock.advance(latency);
        Runnable hook = duringNextStatement;
        duringNextStatement = null;
        if (hook != null) {
            hook.run();
        }
        if (down) {
            throw new SQLTransientConnectionException("connection refused", "08001");
        }
    }

    @Override
    public LeaseStore.Acquired acquire(String name, String holder, Duration ttl) throws SQLException {
        enter("acquire " + name + " " + holder);
        long now = clock.read();
        Row row = rows.get(name);
        if (row == null || row.holder() == null || row.expiresAt() - now <= 0) {
            long token = row == null ? 1 : row.token() + 1;
            rows.put(name, new Row(holder, token, now + ttl.toNanos()));
            if (loseNextAcquireAnswer) {
                loseNextAcquireAnswer = false;
                throw new SQLTransientConnectionException("connection reset after the commit", "08006");
            }
            return new LeaseStore.Acquired(true, token, holder, 0);
        }
        return new LeaseStore.Acquired(
                false,
                row.token(),
                row.holder(),
                Duration.ofNanos(row.expiresAt() - now).toMillis());
    }

    @Override
    public LeaseStore.Renewal renew(String holder, List<LeaseStore.Held> leases) throws SQLException {
        enter("renew " + leases.size());
        long now = clock.read();
        List<String> renewed = new ArrayList<>();
        for (LeaseStore.Held h : leases) {
            Row row = rows.get(h.name());
            if (row != null && holder.equals(row.holder()) && row.token() == h.token() && row.expiresAt() - now > 0) {
                rows.put(
                        h.name(),
                        new Row(
                                holder,
                                row.token(),
                                now + Duration.ofMillis(h.ttlMillis()).toNanos()));
                renewed.add(h.name());
            }
        }
        if (loseRenewAnswers) {
            throw new SQLTransientConnectionException("connection reset after the commit", "08006");
        }
        return new LeaseStore.Renewal(renewed);
    }

    @Override
    public boolean release(String name, String holder, long token) throws SQLException {
        enter("release " + name + " " + token);
        Row row = rows.get(name);
        if (row != null && holder.equals(row.holder()) && row.token() == token) {
            rows.put(name, new Row(null, token, clock.read()));
            return true;
        }
        return false;
    }

    @Override
    public List<LeaseStore.Fact> read(Collection<String> names) throws SQLException {
        enter("read " + String.join(",", names));
        long now = clock.read();
        List<LeaseStore.Fact> facts = new ArrayList<>();
        for (String name : names) {
            Row row = rows.get(name);
            if (row != null) {
                facts.add(new LeaseStore.Fact(
                        name, row.holder(), row.token(), row.holder() != null && row.expiresAt() - now > 0));
            }
        }
        return facts;
    }

    /** Another process takes the lease, as after an expiry or a force release. */
    void takeOver(String name, String holder) {
        Row row = rows.get(name);
        rows.put(
                name,
                new Row(
                        holder,
                        row == null ? 1 : row.token() + 1,
                        clock.read() + Duration.ofSeconds(10).toNanos()));
    }

    @Override
    public void close() {}
}
