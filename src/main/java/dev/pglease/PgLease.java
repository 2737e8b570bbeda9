package dev.pglease;

import dev.pglease.internal.election.Campaign;
import dev.pglease.internal.election.Engine;
import dev.pglease.internal.sql.FenceStatements;
import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.sql.LockStatements;
import dev.pglease.internal.sql.SchemaStatements;
import dev.pglease.internal.sql.SqlErrors;
import dev.pglease.internal.store.SchemaMigration;
import dev.pglease.internal.store.StartupChecks;
import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Transactions;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Objects;
import java.util.Optional;
import javax.sql.DataSource;

/**
 * Leader election and fenced leases on PostgreSQL: the entry point.
 *
 * <pre>{@code
 * PgLease.migrate(dataSource);                                   // once: creates schema "pglease"
 * try (PgLease pglease = PgLease.create(dataSource, LeaseConfig.defaults());
 *      Elector elector = pglease.elector("payments", listener)) {
 *     ...
 *     elector.leadership().ifPresent(grant -> pglease.inFencedTransaction(grant, conn -> charge(conn)));
 * }
 * }</pre>
 *
 * <p>One {@code PgLease} is one candidate identity (its {@link #holderId()}, unique per process incarnation), one
 * election thread that renews all its leases in a single statement, one LISTEN connection that wakes standbys when
 * a lease is released, and one dedicated connection for lease statements. Lease statements use only the database
 * clock; local deadlines use the monotonic {@link Ticker}. Thread-safe.
 */
public final class PgLease implements AutoCloseable {

    /** Name of the Flyway history table pglease keeps inside its own schema. */
    public static final String HISTORY_TABLE = SchemaStatements.HISTORY_TABLE;
    /** Classpath location of the shipped migrations. */
    public static final String MIGRATIONS_LOCATION = SchemaMigration.LOCATION;

    private final DataSource dataSource;
    private final LeaseConfig config;
    private final String holderId;
    private final LeaseStatements leases;
    private final FenceStatements fences;
    private final LockStatements locks;
    private final ForwardFence fence;
    private final Engine engine;
    private volatile boolean closed;

    private PgLease(DataSource dataSource, LeaseConfig config) {
        this.dataSource = dataSource;
        this.config = config;
        this.holderId = newHolderId(config.holderLabel());
        this.leases = new LeaseStatements(config.schema());
        this.fences = new FenceStatements(config.schema());
        this.locks = new LockStatements(config.schema());
        this.fence = new ForwardFence(config.schema() + ".fences");
        this.engine = new Engine(dataSource, config, config.timings(), holderId);
    }

    /**
     * Creates (if needed) and migrates the pglease schema {@code schema} with Flyway, keeping Flyway's history in
     * {@code <schema>.pglease_schema_history} so it never collides with the application's own migrations. The roles
     * get their default names ({@link Roles#defaultsFor}).
     *
     * @return the number of migrations applied (0 when up to date)
     */
    public static int migrate(DataSource dataSource, String schema) {
        return migrate(dataSource, schema, Roles.defaultsFor(Names.schema(schema)));
    }

    /**
     * Like {@link #migrate(DataSource, String)}, with the names of the three roles the migration creates (NOLOGIN,
     * when absent) and grants to: see {@link Roles}. The names are only used by the migration that grants to them;
     * migrating an up-to-date schema with other names changes nothing.
     *
     * @throws IllegalArgumentException if a role name is not a valid role identifier or two names are equal
     * @throws LeaseException            INSUFFICIENT_PRIVILEGE when a role is missing and the migrating role may not
     *                                   create it (the message says how to create it)
     */
    public static int migrate(DataSource dataSource, String schema, Roles roles) {
        Objects.requireNonNull(dataSource, "dataSource");
        Names.schema(schema);
        Objects.requireNonNull(roles, "roles");
        return SchemaMigration.migrate(dataSource, schema, roles.candidate(), roles.observer(), roles.operator());
    }

    /**
     * Names of the roles the schema migration creates (if absent, as NOLOGIN roles) and grants to. Applications log
     * in as their own users, made members of one of them ({@code GRANT billing_candidate TO billing_app}):
     * <ul>
     *   <li>{@code candidate} campaigns, renews, releases and reads; writes forward fences;</li>
     *   <li>{@code observer} reads lease_status, leases, lease_events and fences;</li>
     *   <li>{@code operator} has the observer's rights and calls force_release and handoff.</li>
     * </ul>
     * Each name is a lower-case SQL identifier (a-z, 0-9, _; at most 63 characters; not starting with pg_).
     */
    public record Roles(String candidate, String observer, String operator) {

        public Roles {
            Names.role("candidate role", candidate);
            Names.role("observer role", observer);
            Names.role("operator role", operator);
            if (candidate.equals(observer) || candidate.equals(operator) || observer.equals(operator)) {
                throw new IllegalArgumentException("the candidate, observer and operator roles must be three "
                        + "different roles, got " + candidate + ", " + observer + ", " + operator);
            }
        }

        /** {@code <schema>_candidate}, {@code <schema>_observer}, {@code <schema>_operator}. */
        public static Roles defaultsFor(String schema) {
            Names.schema(schema);
            return new Roles(schema + "_candidate", schema + "_observer", schema + "_operator");
        }
    }

    /** Migrates the default schema {@code pglease}. */
    public static int migrate(DataSource dataSource) {
        return migrate(dataSource, "pglease");
    }

    /** Starts with the default configuration. */
    public static PgLease create(DataSource dataSource) {
        return create(dataSource, LeaseConfig.defaults());
    }

    /**
     * Checks the database (reachable, the schema migrated and at the version this library needs, the role's
     * privileges, durable commits) and starts the election and notification threads. Electors are created with {@link #elector}.
     *
     * <p>It also checks whether the data source goes through a transaction pooler (PgBouncer in
     * {@code pool_mode=transaction}); if so it never LISTENs through it: see {@link LeaseConfig#directDataSource()}.
     *
     * @throws LeaseException DATABASE_UNAVAILABLE, DATABASE_READ_ONLY (a standby in recovery), SCHEMA_MISSING (also
     *                        for a schema older or newer than this library's: the message says what to run),
     *                        INSUFFICIENT_PRIVILEGE, UNSAFE_DURABILITY or UNSUPPORTED_POOLING
     */
    public static PgLease create(DataSource dataSource, LeaseConfig config) {
        Objects.requireNonNull(dataSource, "dataSource must not be null");
        Objects.requireNonNull(config, "config must not be null");
        PgLease pglease = new PgLease(dataSource, config);
        pglease.engine.start();
        return pglease;
    }

    /** How this instance learns of released leases (for tests and diagnostics). */
    StartupChecks.NotificationMode notificationMode() {
        return engine.notificationMode();
    }

    /**
     * Starts campaigning for {@code leaseName} at once. One elector per lease name per {@code PgLease}.
     *
     * @throws IllegalArgumentException if the name is invalid (empty, too long, control characters)
     * @throws IllegalStateException    if this {@code PgLease} already has an elector, or holds a lock, of the name
     */
    public Elector elector(String leaseName, LeaderListener listener) {
        Names.leaseName(leaseName);
        Objects.requireNonNull(listener, "listener must not be null");
        checkOpen();
        Campaign campaign = engine.loop().join(leaseName, listener);
        return new Elector(engine.loop(), campaign, config.timings().renewDeadline());
    }

    /**
     * Who holds {@code leaseName} now, by the database clock; empty when nobody does. For observers that are not
     * candidates; one query, on a connection from the data source.
     */
    public Optional<LeaderInfo> leader(String leaseName) {
        Names.leaseName(leaseName);
        try (Connection c = dataSource.getConnection()) {
            return leases.currentLeader(c, leaseName);
        } catch (SQLException e) {
            throw SqlErrors.unavailable("could not read lease " + Names.quote(leaseName), e);
        }
    }

    /**
     * Runs {@code work} in a transaction of its own, fenced by {@code grant} (a {@link Leadership} or a
     * {@link LeaseLock}): the transaction first locks the lease row ({@code SELECT ... FOR KEY SHARE}) only if this
     * holder still has it with this token and it has not expired; the lock keeps any change of holder or token
     * waiting until the transaction ends, while this holder's renewals go on. The transaction runs at READ COMMITTED,
     * is bounded on the server by the grant's remaining validity (a stalled or cut-off holder's transaction is
     * aborted by the server, never committed late), and commits durably ({@code synchronous_commit} at least
     * {@code on}). The work is committed only if the grant is still valid locally at the end; otherwise everything
     * is rolled back. The isolation, the bounds and the check reach the server in one round trip: the fenced
     * transaction costs one round trip more than the work alone.
     *
     * @throws LeaseException LEASE_LOST when the local deadline passed (before or during the work), STALE_TOKEN when
     *                        the database no longer lists this holder with this token
     * @throws SQLException   from the work or the connection; the transaction is rolled back
     */
    public <T> T inFencedTransaction(LeaseGrant grant, FencedWork<T> work) throws SQLException {
        Objects.requireNonNull(grant, "grant must not be null");
        Objects.requireNonNull(work, "work must not be null");
        grant.checkValid();
        return Transactions.run(dataSource, c -> fence(c, grant, true), work, grant::checkValid);
    }

    /**
     * Fences the transaction already open on {@code connection} (Spring {@code @Transactional}, jOOQ, JPA) with
     * {@code grant}: checks that this holder still has the lease with this token and locks the lease row
     * ({@code FOR KEY SHARE}) until that transaction ends, exactly as {@link #inFencedTransaction} does, with the same
     * server-side bounds (every statement, idle gap and, on PostgreSQL 17+, the whole transaction limited to the
     * grant's remaining validity) and durable commit, all local to the transaction. Call it first in the
     * transaction, before the protected writes; commit only while {@link LeaseGrant#isValid()}.
     *
     * <p>Under REPEATABLE READ or SERIALIZABLE the check reads the lease row through the transaction's snapshot: call
     * it as the transaction's first statement, or a renewal committed in between makes it fail with a serialization
     * error (SQLState 40001), which the caller retries like any other.
     *
     * @throws LeaseException       LEASE_LOST when the local deadline has passed, STALE_TOKEN when the database no
     *                              longer lists this holder with this token: roll the whole transaction back
     * @throws IllegalStateException when the connection is in auto-commit mode (the lock would end at once)
     * @throws SQLException          from the connection
     */
    public void fenceTransaction(Connection connection, LeaseGrant grant) throws SQLException {
        Objects.requireNonNull(connection, "connection must not be null");
        Objects.requireNonNull(grant, "grant must not be null");
        if (connection.getAutoCommit()) {
            throw new IllegalStateException("fenceTransaction must run inside the transaction that makes the "
                    + "protected writes, but the connection is in auto-commit mode");
        }
        fence(connection, grant, false);
    }

    /**
     * The former name of {@link #fenceTransaction(Connection, LeaseGrant)}.
     *
     * @deprecated use {@link #fenceTransaction(Connection, LeaseGrant)}, which does the same
     */
    @Deprecated
    public void lockFence(Connection connection, Leadership leadership) throws SQLException {
        fenceTransaction(connection, leadership);
    }

    /**
     * The fence of {@link #fenceTransaction}; with {@code readCommitted} (a transaction opened here) its isolation is
     * set in the same batch.
     */
    private void fence(Connection connection, LeaseGrant grant, boolean readCommitted) throws SQLException {
        long remainingMillis = grant.remaining().toMillis();
        grant.checkValid();
        if (!fences.fenceTransaction(
                connection, readCommitted, remainingMillis, grant.leaseName(), grant.holder(), grant.token())) {
            engine.fenceRefused(grant); // the grant ends here, as if a renewal had been refused
            throw new LeaseException(
                    LeaseException.Reason.STALE_TOKEN,
                    "lease "
                            + Names.quote(grant.leaseName()) + " is no longer held by " + grant.holder()
                            + " with token " + grant.token() + " in the database; the write was not made");
        }
        grant.checkValid();
    }

    /**
     * Tries once to take {@code name} as a single-shot lock held for at most {@code lockAtMostFor} (no automatic
     * renewal; see {@link LeaseLock}): the same acquire statement and token rules as an elector, under the lock
     * holder id {@link LeaseLock#holder()}. Empty when another holder has it, or when this {@code PgLease} holds it
     * already. One statement in a short durable transaction, on a connection from the data source.
     *
     * @throws LeaseException        DATABASE_UNAVAILABLE when the statement failed, CLOSED after {@link #close()}
     * @throws IllegalStateException when {@code name} is the lease of an elector or a lease group (of this process,
     *                               or in the database)
     */
    public Optional<LeaseLock> tryLock(String name, Duration lockAtMostFor) {
        Names.leaseName(name);
        checkOpen();
        return LeaseLock.tryAcquire(dataSource, locks, engine, config, name, lockAtMostFor);
    }

    /**
     * The forward fence of this schema (the table {@code <schema>.fences}): for resources outside this database, to
     * which a writer passes its grant's {@link LeaseGrant#token() token}.
     */
    public ForwardFence forwardFence() {
        return fence;
    }

    /**
     * The former name of {@link #forwardFence()}.
     *
     * @deprecated use {@link #forwardFence()}, which returns the same fence
     */
    @Deprecated
    public ForwardFence fence() {
        return forwardFence();
    }

    /** This process incarnation's holder id: holder label, process id and a random suffix. */
    public String holderId() {
        return holderId;
    }

    public LeaseConfig config() {
        return config;
    }

    /**
     * Ends every leadership locally, releases every held lease (waiting at most renewDeadline) and stops the
     * threads. Idempotent.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        engine.close();
    }

    private void checkOpen() {
        if (closed) {
            throw new LeaseException(LeaseException.Reason.CLOSED, "this PgLease is closed");
        }
    }

    private static String newHolderId(String label) {
        byte[] random = new byte[4];
        new java.security.SecureRandom().nextBytes(random);
        return label + "/" + ProcessHandle.current().pid() + "/"
                + HexFormat.of().formatHex(random);
    }

    @Override
    public String toString() {
        return "PgLease{holder=" + holderId + ", schema=" + config.schema() + "}";
    }
}
