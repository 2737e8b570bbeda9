package dev.pglease;

import dev.pglease.internal.sql.FenceStatements;
import dev.pglease.internal.sql.SessionStatements;
import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Transactions;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.OptionalLong;
import javax.sql.DataSource;

/**
 * A forward-only fence for a resource outside the lease row: a table {@code (resource, token)} whose token only
 * moves up. A writer advances the fence to its token in the same transaction as its change to the resource; the
 * advance succeeds only if no higher token was accepted before, so once a new holder has written, a stale holder's
 * writes are refused. The fence table can live in any PostgreSQL database (create it with {@link #createTable});
 * the pglease schema has one ({@link PgLease#forwardFence()}). Services in other languages can call the schema's
 * {@code advance_fence(resource, token)} function the same way.
 */
public final class ForwardFence {

    private final String table;

    /** A fence backed by {@code table} ({@code name} or {@code schema.name}, lower-case identifiers). */
    public ForwardFence(String table) {
        this.table = Names.qualifiedTable(table);
    }

    /** Creates the fence table if it does not exist. */
    public static void createTable(Connection connection, String table) throws SQLException {
        FenceStatements.createTable(connection, Names.qualifiedTable(table));
    }

    public String table() {
        return table;
    }

    /**
     * Check-and-advance inside the caller's open transaction: moves the fence of {@code resource} to {@code token}
     * if it is not above it. Concurrent writers serialise on the fence row, so call it before changing the resource.
     * The transaction's commit is made durable ({@code synchronous_commit} raised to {@code on} for it where the
     * session would acknowledge a commit before it is flushed).
     *
     * @return the token, now the fence value
     * @throws LeaseException with reason STALE_TOKEN when a higher token was accepted before; roll back then
     * @throws IllegalStateException when the connection is in auto-commit mode (the check would not protect the write)
     */
    public long advance(Connection connection, String resource, long token) throws SQLException {
        Names.resource(resource);
        checkToken(token);
        if (connection.getAutoCommit()) {
            throw new IllegalStateException("ForwardFence.advance must run inside the transaction that changes the "
                    + "resource, but the connection is in auto-commit mode");
        }
        SessionStatements.raiseSynchronousCommitLocally(connection);
        if (!FenceStatements.advance(connection, table, resource, token)) {
            OptionalLong current = current(connection, resource);
            throw new LeaseException(
                    LeaseException.Reason.STALE_TOKEN,
                    "token " + token + " is stale for resource "
                            + Names.quote(resource) + ": the fence in " + table + " is already at "
                            + (current.isPresent() ? String.valueOf(current.getAsLong()) : "a higher token"));
        }
        return token;
    }

    /**
     * Runs {@code work} in a READ COMMITTED transaction that first advances the fence; commits when it returns, rolls
     * everything back when the token is stale or the work throws.
     */
    public <T> T inTransaction(DataSource dataSource, String resource, long token, FencedWork<T> work)
            throws SQLException {
        Names.resource(resource);
        checkToken(token);
        return Transactions.run(
                dataSource,
                c -> {
                    FenceStatements.readCommitted(c);
                    advance(c, resource, token);
                },
                work,
                () -> {});
    }

    /** The fence value of {@code resource}, if any write was accepted yet. */
    public OptionalLong current(Connection connection, String resource) throws SQLException {
        return FenceStatements.current(connection, table, Names.resource(resource))
                .map(OptionalLong::of)
                .orElse(OptionalLong.empty());
    }

    private static void checkToken(long token) {
        if (token < 0) {
            throw new IllegalArgumentException("token must be 0 or more, got " + token);
        }
    }

    @Override
    public String toString() {
        return "ForwardFence{" + table + "}";
    }
}
