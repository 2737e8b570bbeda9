package dev.pglease;

import dev.pglease.internal.election.Campaign;
import dev.pglease.internal.election.Engine;
import dev.pglease.internal.group.Groups;
import dev.pglease.internal.group.MemberEngine;
import dev.pglease.internal.sql.FenceStatements;
import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.sql.LockStatements;
import dev.pglease.internal.sql.ProtectionStatements;
import dev.pglease.internal.sql.SchemaStatements;
import dev.pglease.internal.sql.SqlErrors;
import dev.pglease.internal.store.FenceCheckConnection;
import dev.pglease.internal.store.SchemaMigration;
import dev.pglease.internal.store.StartupChecks;
import dev.pglease.internal.util.FenceDeadlines;
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
    private final FenceDeadlines deadlines;
    /** Where a fenced caller transaction's deadline asks whether that transaction still runs. */
    private final FenceCheckConnection fenceCheck;
    /** The lease groups of this process, created with the first; guarded by itself. */
    private final java.util.List<LeaseGroup> groups = new java.util.ArrayList<>();

    private Groups groupEngine;
    private volatile boolean closed;

    /** How long the deadline check's connection waits for an answer before it is dropped. */
    private static final Duration FENCE_CHECK_NETWORK_TIMEOUT = Duration.ofSeconds(2);
    /** How long the first fence of a caller's transaction waits for the check connection to open. */
    private static final Duration FENCE_CHECK_OPEN_WAIT = Duration.ofSeconds(1);

    private PgLease(DataSource dataSource, LeaseConfig config) {
        this.dataSource = dataSource;
        this.config = config;
        this.holderId = newHolderId(config.holderLabel());
        this.leases = new LeaseStatements(config.schema());
        this.fences = new FenceStatements(config.schema());
        this.locks = new LockStatements(config.schema());
        this.fence = new ForwardFence(config.schema(), fences);
        this.engine = new Engine(dataSource, config, config.timings(), holderId);
        this.fenceCheck = new FenceCheckConnection(dataSource, FENCE_CHECK_NETWORK_TIMEOUT, "pglease-fence-check-open");
        this.deadlines = new FenceDeadlines("pglease-fence-deadlines", fenceCheck);
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

    /**
     * Protects {@code table} with {@code lease} (schema {@code pglease}): see
     * {@link #protect(DataSource, String, String, String)}.
     */
    public static void protect(DataSource tableOwner, String table, String lease) {
        protect(tableOwner, "pglease", table, lease);
    }

    /**
     * Makes the database itself refuse every stale or unfenced write to {@code table}: from now on an
     * {@code INSERT}, {@code UPDATE} or {@code DELETE} (also {@code COPY}, {@code MERGE}, upserts) on it commits only
     * in a transaction fenced for {@code lease} with the lease's current token, by the login that holds it, while
     * the lease has not expired ({@link #inFencedTransaction}, {@link #fenceTransaction}, the Spring integration, or
     * {@code <schema>.fence(lease, token)} from any client); any other write fails with SQLSTATE {@code PL002} and
     * nothing of it is written, and {@code TRUNCATE} is refused. Idempotent.
     *
     * <p>Runs {@code <schema>.protect(table, lease)} as {@code tableOwner}, a login that owns the table (only the
     * owner may put triggers on it) and is a member of one of the schema's roles (the observer role is enough); the
     * owner itself, like a superuser, is not stopped by the protection it can remove.
     *
     * @param table a table name as SQL reads it ({@code charges}, {@code billing.charges}), resolved with the owner
     *     login's search path
     * @throws IllegalArgumentException when the table does not exist, is not a table, belongs to pglease, is protected
     *     by another lease, or a name is invalid (the message says which)
     * @throws LeaseException INSUFFICIENT_PRIVILEGE when the login does not own the table or may not use the pglease
     *     schema (the message says what to grant), SCHEMA_MISSING when the schema has no protected tables (migrate
     *     it), DATABASE_UNAVAILABLE
     */
    public static void protect(DataSource tableOwner, String schema, String table, String lease) {
        Objects.requireNonNull(tableOwner, "tableOwner must not be null");
        Names.schema(schema);
        Names.leaseName(lease);
        String what = "protect table " + Names.quote(tableName(table)) + " with lease " + Names.quote(lease);
        try (Connection c = tableOwner.getConnection()) {
            new ProtectionStatements(schema).protect(c, table, lease);
            if (!c.getAutoCommit()) {
                c.commit();
            }
        } catch (SQLException e) {
            throw protectionFailure(what, tableOwner, schema, e);
        }
    }

    /** Removes the protection of {@code table} (schema {@code pglease}); see {@link #unprotect(DataSource, String, String)}. */
    public static boolean unprotect(DataSource tableOwner, String table) {
        return unprotect(tableOwner, "pglease", table);
    }

    /**
     * Removes the protection {@link #protect} put on {@code table}, as {@code tableOwner} (a login that owns it).
     *
     * @return whether the table was protected
     * @throws IllegalArgumentException when the table does not exist or its name is invalid
     * @throws LeaseException INSUFFICIENT_PRIVILEGE when the login does not own the table or may not use the pglease
     *     schema, SCHEMA_MISSING, DATABASE_UNAVAILABLE
     */
    public static boolean unprotect(DataSource tableOwner, String schema, String table) {
        Objects.requireNonNull(tableOwner, "tableOwner must not be null");
        Names.schema(schema);
        String what = "unprotect table " + Names.quote(tableName(table));
        try (Connection c = tableOwner.getConnection()) {
            boolean was = new ProtectionStatements(schema).unprotect(c, table);
            if (!c.getAutoCommit()) {
                c.commit();
            }
            return was;
        } catch (SQLException e) {
            throw protectionFailure(what, tableOwner, schema, e);
        }
    }

    private static String tableName(String table) {
        if (table == null
                || table.isBlank()
                || table.length() > 200
                || table.chars().anyMatch(Character::isISOControl)) {
            throw new IllegalArgumentException("table must be a table name as SQL reads it (charges, billing.charges; "
                    + "at most 200 characters, no control characters), got "
                    + (table == null ? "null" : Names.quote(table)));
        }
        return table;
    }

    /** A failed protect or unprotect, told by what the server said. */
    private static RuntimeException protectionFailure(String what, DataSource login, String schema, SQLException e) {
        String said = String.valueOf(e.getMessage());
        String state = String.valueOf(e.getSQLState());
        switch (state) {
            case "42P01", "42809", "22023", "3F000" -> {
                if (!"3F000".equals(state) || !said.contains(schema)) {
                    return new IllegalArgumentException("could not " + what + ": " + said, e);
                }
            }
            case "42501" -> {
                String user = currentUser(login);
                return new LeaseException(
                        LeaseException.Reason.INSUFFICIENT_PRIVILEGE,
                        "could not " + what + ": " + said
                                + (said.contains("schema " + schema) || said.contains("function")
                                        ? "; the table's owner must be a member of a pglease role (the observer role "
                                                + "is enough): GRANT "
                                                + Roles.defaultsFor(schema).observer() + " TO "
                                                + user + " (or the observer role named when the schema was migrated)"
                                        : "; protect a table as the login that owns it (this one is " + user + ")"),
                        e);
            }
            default -> {
                // below
            }
        }
        if ("42883".equals(state) || "3F000".equals(state)) {
            return new LeaseException(
                    LeaseException.Reason.SCHEMA_MISSING,
                    "could not " + what + ": schema " + schema + " has no protect() function (" + said
                            + "): have the schema owner migrate it (`pglease migrate --schema " + schema + "`)",
                    e);
        }
        return SqlErrors.unavailable("could not " + what, e);
    }

    private static String currentUser(DataSource login) {
        try (Connection c = login.getConnection()) {
            return SchemaStatements.currentUser(c);
        } catch (SQLException e) {
            return "<the table owner's login>";
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

    /** {@link #group(String, int, GroupConfig, GroupListener)} with weight 1 and priority 0. */
    public LeaseGroup group(String name, int shards, GroupListener listener) {
        return group(name, shards, GroupConfig.defaults(), listener);
    }

    /**
     * Joins lease group {@code name} of {@code shards} shards (numbered 0 to shards-1) as a member with the given
     * weight and priority, and follows the group's assignment from now on: the listener is told of each shard this
     * member gains and loses. Every member of a group must give the same number of shards. Shard {@code k} is the
     * lease {@code name/k} (of kind shard): fence writes with its {@link Leadership} as with any lease.
     *
     * <p>The assignment: the shards are spread over the live members in proportion to their weights (equal weights:
     * counts differ by at most one); a member keeps what it owns up to its share; the shards left over when shares
     * do not divide evenly go to members of higher priority first. A join moves only the shards the newcomer's
     * share takes; a leave, only the leaver's. Moves are cooperative; the shards of a member that stopped renewing
     * are taken once its leases expire, or, with {@link LeaseConfig.Builder#fastFailover fast failover}, the moment
     * its lease session ends (every member of a group should then run in that mode).
     *
     * @throws IllegalArgumentException if the name is invalid (as a lease name, and at most 190 characters),
     *                                  shards is not between 1 and 100000, or the group's live members have another
     *                                  number of shards (the database refuses the join; the message names both)
     * @throws IllegalStateException    if this {@code PgLease} is already a member of the group
     * @throws LeaseException           DATABASE_UNAVAILABLE when the join failed, CLOSED after {@link #close()}
     */
    public LeaseGroup group(String name, int shards, GroupConfig config, GroupListener listener) {
        Names.leaseName(name);
        if (name.codePointCount(0, name.length()) > 190) {
            throw new IllegalArgumentException("a group name is at most 190 characters (its shards are leases named "
                    + "<group>/<shard>), got " + name.codePointCount(0, name.length()) + ": " + Names.quote(name));
        }
        if (shards < 1 || shards > 100_000) {
            throw new IllegalArgumentException("shards must be between 1 and 100000, got " + shards);
        }
        Objects.requireNonNull(config, "config must not be null");
        Objects.requireNonNull(listener, "listener must not be null");
        checkOpen();
        synchronized (groups) {
            if (groupEngine == null) {
                groupEngine = new Groups(engine, dataSource, this.config, holderId);
            }
            MemberEngine member;
            try {
                member = groupEngine.join(name, shards, config.weight(), config.priority(), listener);
            } catch (SQLException e) {
                if ("22023".equals(e.getSQLState())) {
                    throw new IllegalArgumentException(e.getMessage(), e);
                }
                throw SqlErrors.unavailable("could not join group " + Names.quote(name), e);
            }
            LeaseGroup group = new LeaseGroup(member);
            groups.add(group);
            return group;
        }
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
     * waiting until the transaction ends, while this holder's renewals go on. The transaction runs at READ COMMITTED
     * and commits durably ({@code synchronous_commit} at least {@code on}). It is bounded by the grant's remaining
     * validity when it starts ({@link LeaseGrant#remaining()}): on the server (each statement, lock wait and idle
     * gap, and on PostgreSQL 17+ the whole transaction), and in this process, on every version: if the transaction
     * is still open at that deadline, its connection is aborted, so a holder that stalls or keeps sending statements
     * can not hold the lease row past its deadline. The work is committed only if the grant is still valid locally
     * at the end; otherwise everything is rolled back. The isolation, the bounds and the check reach the server in
     * one round trip: the fenced transaction costs one round trip more than the work alone.
     *
     * @throws LeaseException LEASE_LOST when the local deadline passed (before or during the work: then the
     *                        connection was aborted and the cause is what the work saw), STALE_TOKEN when the
     *                        database no longer lists this holder with this token
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
     * server-side bounds (every statement, lock wait, idle gap and, on PostgreSQL 17+, the rest of the transaction
     * limited to the grant's remaining validity) and durable commit, all local to the transaction. Call it first in
     * the transaction, before the protected writes, and again whenever you are unsure the fence still holds: after a
     * rollback to a savepoint the lock and the bounds are gone (fencing again is one statement). Commit only while
     * {@link LeaseGrant#isValid()}.
     *
     * <p>The rest of the transaction is bounded in this process too: if, at the grant's deadline as it was at this
     * call, {@code connection} has not been closed (a pooled connection handed back is closed) and is still inside the
     * transaction fenced here, it is aborted ({@link Connection#abort}); the application's next statement fails, and
     * the server rolls the transaction back. Whether that server transaction still runs is asked on a connection this
     * {@code PgLease} takes from the data source at the first call of this method (waiting for it at most a second,
     * then going on while it opens) and keeps for these questions, so a pool that is busy at the deadline does not
     * delay the answer. A later transaction on the same connection is not aborted when the database answers within a
     * second. When it does not (the check connection could not be opened, its server does not answer, or the question
     * fails), the connection is aborted all the same, whatever transaction it runs by then: the fenced one may still
     * be open, and ending it is the safe choice. A later fence of the same lease on the same connection replaces that
     * deadline.
     *
     * <p>Under REPEATABLE READ or SERIALIZABLE the check reads the lease row through the transaction's snapshot: call
     * it as the transaction's first statement, or a renewal committed in between makes it fail with a serialization
     * error (SQLState 40001), which the caller retries like any other.
     *
     * @throws LeaseException       LEASE_LOST when the local deadline has passed, STALE_TOKEN when the database no
     *                              longer lists this holder with this token (the grant ends),
     *                              INSUFFICIENT_PRIVILEGE when the connection logs in as another login than the
     *                              lease's (the grant, still listed, stays valid): roll the whole transaction back
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
        fenceCheck.prepare(FENCE_CHECK_OPEN_WAIT);
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
     * set in the same batch. The deadline is watched from before the statement is sent, so a fence that waits
     * for the lease row past it is aborted too.
     */
    private void fence(Connection connection, LeaseGrant grant, boolean readCommitted) throws SQLException {
        Duration remaining = grant.remaining();
        grant.checkValid();
        FenceDeadlines.Watch watch = deadlines.watch(connection, grant.leaseName(), grant.token(), remaining);
        FenceStatements.FencedTransaction held;
        try {
            held = fences.fence(
                    connection, readCommitted, remaining.toMillis(), grant.leaseName(), grant.holder(), grant.token());
        } catch (SQLException | RuntimeException e) {
            if (watch.aborted()) {
                throw Transactions.lost(watch, e);
            }
            watch.end();
            if (e instanceof SQLException refused && SqlErrors.staleFence(refused)) {
                throw fenceRefused(connection, grant, refused);
            }
            throw e;
        }
        watch.identify(held.pid(), held.xid());
        grant.checkValid();
    }

    /**
     * Why a fence was refused (SQLSTATE PL001). When the database still lists this holder with the grant's token,
     * unexpired, and {@code connection} logs in as another login than this {@code PgLease}'s, the grant is fine and
     * the connection is the cause: INSUFFICIENT_PRIVILEGE, the grant kept. Otherwise (or when the database can not
     * be asked) the grant is stale and ends here, as if a renewal had been refused: STALE_TOKEN.
     */
    private LeaseException fenceRefused(Connection connection, LeaseGrant grant, SQLException refused) {
        try (Connection own = dataSource.getConnection()) {
            Optional<LeaderInfo> listed = leases.currentLeader(own, grant.leaseName());
            String leaseLogin = own.getMetaData().getUserName();
            String fencingLogin = connection.getMetaData().getUserName();
            if (listed.isPresent()
                    && grant.holder().equals(listed.get().holder())
                    && listed.get().token() == grant.token()
                    && listed.get().remaining().compareTo(Duration.ZERO) > 0
                    && !Objects.equals(leaseLogin, fencingLogin)) {
                return new LeaseException(
                        LeaseException.Reason.INSUFFICIENT_PRIVILEGE,
                        "the fence of lease " + Names.quote(grant.leaseName()) + " (token " + grant.token()
                                + ") was refused because the connection logs in as "
                                + Names.quote(String.valueOf(fencingLogin))
                                + ", not as the login that holds the lease ("
                                + Names.quote(String.valueOf(leaseLogin)) + "): a fence only works on a connection "
                                + "of the lease's login; the grant is still valid; the write was not made",
                        refused);
            }
        } catch (SQLException | RuntimeException e) {
            refused.addSuppressed(e); // can not tell: the grant is treated as stale
        }
        engine.fenceRefused(grant); // the grant ends here, as if a renewal had been refused
        return new LeaseException(
                LeaseException.Reason.STALE_TOKEN,
                "lease "
                        + Names.quote(grant.leaseName()) + " is no longer held by " + grant.holder()
                        + " with token " + grant.token() + " in the database; the write was not made",
                refused);
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
     * Ends every leadership and every {@link LeaseLock} still held locally, releases every held lease and lock
     * (waiting at most renewDeadline for the leases) and stops the threads. Idempotent.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        java.util.List<LeaseGroup> open;
        synchronized (groups) {
            open = java.util.List.copyOf(groups);
        }
        open.forEach(LeaseGroup::close);
        if (groupEngine != null) {
            groupEngine.close();
        }
        engine.close();
        deadlines.close();
        fenceCheck.close();
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
