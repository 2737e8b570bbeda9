package dev.pglease;

import dev.pglease.internal.sql.FenceStatements;
import dev.pglease.internal.sql.SessionStatements;
import dev.pglease.internal.sql.SqlErrors;
import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Secrets;
import dev.pglease.internal.util.Transactions;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Objects;
import java.util.OptionalLong;
import javax.sql.DataSource;

/**
 * A forward-only fence for a resource outside the lease row (a file, a remote service, a table in another system):
 * a table {@code (resource, token)} whose token only moves up. A writer advances the fence to its grant's token in
 * the same transaction as its change to the resource; the advance succeeds only if no higher token was accepted
 * before, so once a new holder has written, a stale holder's writes are refused. Concurrent writers of one resource
 * serialise on its fence row until their transactions end.
 *
 * <p>Two kinds of fence table:
 * <ul>
 *   <li>the pglease schema's own ({@link PgLease#forwardFence()}), in the database of the leases: bound to them, it
 *       accepts only the token of the lease's current, unexpired grant, so nobody can push a fence past every future
 *       grant, and a resource stays with the lease that first fenced it. Advance it
 *       with the grant ({@link #advance(Connection, String, LeaseGrant)}) or a lease and token
 *       ({@link #advance(Connection, String, String, long)}); services in other languages call the schema's
 *       {@code advance_fence(resource, lease, token)} function the same way;</li>
 *   <li>a table of your own in any PostgreSQL database ({@link #createTable}, then {@code new ForwardFence(table)}):
 *       it keeps the order of tokens but can not know which tokens a lease granted (it may live elsewhere); its
 *       forward-only trigger keeps any writer that may update it from setting a fence back.</li>
 * </ul>
 */
public final class ForwardFence {

    private final String table;
    private final FenceStatements leases;

    /** A fence backed by {@code table} ({@code name} or {@code schema.name}, lower-case identifiers) of your own. */
    public ForwardFence(String table) {
        this.table = Names.qualifiedTable(table);
        this.leases = null;
    }

    /** The pglease schema's fence, bound to the schema's leases. */
    ForwardFence(String schema, FenceStatements statements) {
        this.table = Names.schema(schema) + ".fences";
        this.leases = statements;
    }

    /**
     * Creates the fence table if it does not exist, with its forward-only guard: a trigger lets an update only keep
     * or raise the token of the same resource and refuses deletes, and only the table's owner may truncate it (its
     * trigger function, {@code pglease_fence_forward_only()}, is created in the table's schema). A table created
     * without the guard gets it.
     */
    public static void createTable(Connection connection, String table) throws SQLException {
        FenceStatements.createTable(connection, Names.qualifiedTable(table));
    }

    public String table() {
        return table;
    }

    /** Whether this is the pglease schema's fence, which accepts only the token of its lease's current grant. */
    public boolean boundToLeases() {
        return leases != null;
    }

    /**
     * Check-and-advance inside the caller's open transaction, with {@code grant}'s token: refuses a grant whose local
     * deadline has passed (no write is started after it), then moves the fence of {@code resource} to the token if
     * it is not above it. Call it before changing the resource. The transaction's commit is made durable
     * ({@code synchronous_commit} raised to {@code on} for it where the session would acknowledge a commit before it
     * is flushed).
     *
     * @return the token, now the fence value
     * @throws LeaseException LEASE_LOST when the grant is no longer valid; STALE_TOKEN when a higher token was
     *     accepted before (or, on the schema's fence, the token is not the lease's current grant); roll back then
     * @throws IllegalStateException when the connection is in auto-commit mode (the check would not protect the write)
     */
    public long advance(Connection connection, String resource, LeaseGrant grant) throws SQLException {
        Objects.requireNonNull(grant, "grant must not be null");
        grant.checkValid();
        return advance(connection, resource, grant.leaseName(), grant.token());
    }

    /**
     * Check-and-advance with a token of lease {@code lease} received from elsewhere (a request header, a message):
     * what a receiving service does. The schema's fence also refuses a token that is not the lease's current,
     * unexpired grant (the database knows the grants); a fence of
     * your own only keeps the order.
     *
     * @return the token, now the fence value
     * @throws LeaseException STALE_TOKEN when a higher token was accepted before, or (the schema's fence) the token is
     *     not the lease's current grant: its cause is then the database's refusal (SQLSTATE PL001) when the lease never
     *     granted it
     * @throws IllegalStateException when the connection is in auto-commit mode
     */
    public long advance(Connection connection, String resource, String lease, long token) throws SQLException {
        Names.resource(resource);
        Names.leaseName(lease);
        checkToken(token);
        requireTransaction(connection);
        SessionStatements.raiseSynchronousCommitLocally(connection);
        boolean accepted;
        if (leases != null) {
            if (token < 1) {
                throw new LeaseException(
                        LeaseException.Reason.STALE_TOKEN,
                        "token " + token + " of lease " + Names.quote(lease) + " was refused for resource "
                                + Names.quote(resource) + ": no lease grants it (tokens start at 1)",
                        new SQLException("token below 1", SqlErrors.STALE_FENCE));
            }
            try {
                accepted = leases.advanceGranted(connection, resource, lease, token);
            } catch (SQLException e) {
                if (SqlErrors.staleFence(e)) {
                    throw new LeaseException(
                            LeaseException.Reason.STALE_TOKEN,
                            "token " + token + " of lease " + Names.quote(lease) + " was refused for resource "
                                    + Names.quote(resource) + ": " + Secrets.redact(String.valueOf(e.getMessage())),
                            e);
                }
                throw e;
            }
        } else {
            accepted = FenceStatements.advance(connection, table, resource, token);
        }
        if (!accepted) {
            throw stale(connection, resource, lease, token);
        }
        return token;
    }

    /**
     * Check-and-advance of a fence table of your own with a bare token: moves the fence of {@code resource} to
     * {@code token} if it is not above it, inside the caller's open transaction.
     *
     * @return the token, now the fence value
     * @throws LeaseException STALE_TOKEN when a higher token was accepted before; roll back then
     * @throws IllegalStateException on the pglease schema's fence, which is bound to leases (name the lease: use
     *     {@link #advance(Connection, String, LeaseGrant)} or {@link #advance(Connection, String, String, long)}),
     *     and when the connection is in auto-commit mode
     */
    public long advance(Connection connection, String resource, long token) throws SQLException {
        Names.resource(resource);
        checkToken(token);
        requireUnbound("advance(connection, resource, token)");
        requireTransaction(connection);
        SessionStatements.raiseSynchronousCommitLocally(connection);
        if (!FenceStatements.advance(connection, table, resource, token)) {
            throw stale(connection, resource, null, token);
        }
        return token;
    }

    /**
     * Runs {@code work} in a READ COMMITTED transaction that first advances the fence of {@code resource} with
     * {@code grant}'s token; commits when it returns, rolls everything back when the grant is lost, the token is
     * stale or the work throws.
     */
    public <T> T inTransaction(DataSource dataSource, String resource, LeaseGrant grant, FencedWork<T> work)
            throws SQLException {
        Objects.requireNonNull(grant, "grant must not be null");
        Names.resource(resource);
        return Transactions.run(
                dataSource,
                c -> {
                    FenceStatements.readCommitted(c);
                    advance(c, resource, grant);
                },
                work,
                grant::checkValid);
    }

    /**
     * Runs {@code work} in a READ COMMITTED transaction that first advances the fence of {@code resource} with a
     * token of lease {@code lease} received from elsewhere; commits when it returns, rolls everything back when the
     * token is stale (or not granted) or the work throws.
     */
    public <T> T inTransaction(DataSource dataSource, String resource, String lease, long token, FencedWork<T> work)
            throws SQLException {
        Names.resource(resource);
        Names.leaseName(lease);
        checkToken(token);
        return Transactions.run(
                dataSource,
                c -> {
                    FenceStatements.readCommitted(c);
                    advance(c, resource, lease, token);
                },
                work,
                () -> {});
    }

    /**
     * Runs {@code work} in a READ COMMITTED transaction that first advances the fence (a table of your own) with a
     * bare token; commits when it returns, rolls everything back when the token is stale or the work throws.
     *
     * @throws IllegalStateException on the pglease schema's fence, which is bound to leases
     */
    public <T> T inTransaction(DataSource dataSource, String resource, long token, FencedWork<T> work)
            throws SQLException {
        Names.resource(resource);
        checkToken(token);
        requireUnbound("inTransaction(dataSource, resource, token, work)");
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

    private LeaseException stale(Connection connection, String resource, String lease, long token) throws SQLException {
        OptionalLong current = current(connection, resource);
        String at = current.isPresent() ? String.valueOf(current.getAsLong()) : "none";
        return new LeaseException(
                LeaseException.Reason.STALE_TOKEN,
                "token " + token + (lease == null ? "" : " of lease " + Names.quote(lease))
                        + " is stale for resource " + Names.quote(resource) + ": "
                        + (current.isPresent() && current.getAsLong() > token
                                ? "the fence in " + table + " is already at " + at
                                : "it is not the lease's current grant (the fence in " + table + " is at " + at + ")"));
    }

    private void requireUnbound(String call) {
        if (leases != null) {
            throw new IllegalStateException("the fence table " + table + " of the pglease schema is bound to its "
                    + "leases and accepts only the token of a lease's current grant: " + call
                    + " does not name the lease; use "
                    + "advance(connection, resource, grant) or advance(connection, resource, lease, token)");
        }
    }

    private static void requireTransaction(Connection connection) throws SQLException {
        if (connection.getAutoCommit()) {
            throw new IllegalStateException("ForwardFence.advance must run inside the transaction that changes the "
                    + "resource, but the connection is in auto-commit mode");
        }
    }

    private static void checkToken(long token) {
        if (token < 0) {
            throw new IllegalArgumentException("token must be 0 or more, got " + token);
        }
    }

    @Override
    public String toString() {
        return "ForwardFence{" + table + (leases != null ? ", bound to leases" : "") + "}";
    }
}
