package dev.pglease.cli;

import dev.pglease.Leadership;
import dev.pglease.LeaseException;
import dev.pglease.internal.sql.FenceStatements;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import javax.sql.DataSource;

/**
 * The protected resource of the node command: a counter row and its accept log, written in one transaction (the
 * tables: {@link FencedCounterTables}).
 */
final class FencedCounter {
    private final String schema;
    private final String name;
    private final Duration hold;
    /** Told when the transaction is open and the held work begins (only with a hold). */
    private final Runnable opened;

    FencedCounter(String schema, String name, Duration hold, Runnable opened) {
        this.schema = schema;
        this.name = name;
        this.hold = hold;
        this.opened = opened;
    }

    /**
     * Fault injection: the write without the library's local deadline check, in one transaction that checks the
     * lease row on the database (locked FOR SHARE, which blocks every change of the row until commit, or with
     * {@code unlocked} a plain read taken before the held work).
     */
    long incrementWithoutDeadline(DataSource ds, Leadership l, boolean unlocked) throws SQLException {
        try (Connection c = ds.getConnection()) {
            c.setAutoCommit(false);
            try {
                if (!new FenceStatements(schema).leaseRowHeld(c, name, l.holder(), l.token(), !unlocked)) {
                    throw new LeaseException(
                            LeaseException.Reason.STALE_TOKEN,
                            "token " + l.token() + " is not the valid grant of " + name + " on the database");
                }
                long value = increment(c, l);
                c.commit();
                return value;
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            }
        }
    }

    private void sleep() {
        if (!hold.isZero()) {
            opened.run();
            try {
                TimeUnit.NANOSECONDS.sleep(hold.toNanos());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    long increment(Connection c, Leadership l) throws SQLException {
        sleep();
        long value;
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + schema + ".fenced_counter AS f "
                + "(name, value, token) VALUES (?, 1, ?) ON CONFLICT (name) DO UPDATE "
                + "SET value = f.value + 1, token = excluded.token RETURNING value")) {
            ps.setString(1, name);
            ps.setLong(2, l.token());
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                value = rs.getLong(1);
            }
        }
        log(c, l, value);
        return value;
    }

    private void log(Connection c, Leadership l, long value) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement(
                "INSERT INTO " + schema + ".fenced_counter_log (name, token, holder, value) VALUES (?, ?, ?, ?)")) {
            ps.setString(1, name);
            ps.setLong(2, l.token());
            ps.setString(3, l.holder());
            ps.setLong(4, value);
            ps.executeUpdate();
        }
    }
}
