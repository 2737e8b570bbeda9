package dev.pglease.spring;

import dev.pglease.FencingContext;
import dev.pglease.Leadership;
import dev.pglease.LeaseException;
import dev.pglease.LeaseGrant;
import dev.pglease.PgLease;
import dev.pglease.internal.util.FenceDeadlines;
import dev.pglease.internal.util.Names;
import dev.pglease.internal.util.Transactions;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Objects;
import java.util.Optional;
import javax.sql.DataSource;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.dao.DataAccessException;
import org.springframework.jdbc.datasource.DataSourceUtils;
import org.springframework.jdbc.datasource.JdbcTransactionObjectSupport;
import org.springframework.jdbc.support.SQLErrorCodeSQLExceptionTranslator;
import org.springframework.jdbc.support.SQLExceptionTranslator;
import org.springframework.transaction.NoTransactionException;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.transaction.TransactionDefinition;
import org.springframework.transaction.TransactionException;
import org.springframework.transaction.TransactionStatus;
import org.springframework.transaction.TransactionSystemException;
import org.springframework.transaction.interceptor.TransactionAspectSupport;
import org.springframework.transaction.interceptor.TransactionAttribute;
import org.springframework.transaction.support.CallbackPreferringPlatformTransactionManager;
import org.springframework.transaction.support.DefaultTransactionStatus;
import org.springframework.transaction.support.ResourceTransactionManager;
import org.springframework.transaction.support.TransactionCallback;
import org.springframework.transaction.support.TransactionSynchronization;
import org.springframework.transaction.support.TransactionSynchronizationManager;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * Fenced writes inside Spring transactions: the Spring transaction itself (the one a {@code @Transactional} method
 * or a {@link TransactionTemplate} opened on the application's {@code DataSource}) is fenced with
 * {@link PgLease#fenceTransaction}, so {@code JdbcTemplate}, jOOQ or any other code that takes its connection from
 * Spring writes under the fence, and commits or rolls back with everything else in that transaction:
 * <ul>
 *   <li>every fenced call fences the connection of the transaction it runs in (through {@link DataSourceUtils}):
 *       the lease row is locked {@code FOR KEY SHARE} if this holder still has the lease with this token, so a
 *       takeover waits until the transaction ends; the transaction is bounded by the grant's remaining validity (on
 *       the server, and in this process by aborting its connection if it is still open at that deadline) and
 *       commits durably. A call in a new transaction ({@code REQUIRES_NEW}: another connection) fences that one;
 *       a call that joins a transaction ({@code REQUIRED}, {@code SUPPORTS}, {@code MANDATORY}, {@code NESTED})
 *       fences it again (one statement);</li>
 *   <li>a rollback to a savepoint releases the lock the fence took after the savepoint: the transaction is fenced
 *       again just before commit;</li>
 *   <li>just before commit every grant the transaction was fenced with is checked again
 *       ({@link LeaseGrant#isValid()}); if one's deadline passed, the commit is refused and the whole transaction
 *       rolled back;</li>
 *   <li>a stale or lost lease throws {@link LeaseException} ({@code STALE_TOKEN}, {@code LEASE_LOST}), which rolls
 *       the whole Spring transaction back. When {@link #execute} (or a {@link Fenced} method) opened the
 *       transaction, a lease lost while it ran is reported as {@code LEASE_LOST} even when what failed first was the
 *       connection (aborted at the deadline, or ended by the server while the process was paused), with that
 *       failure as the cause.</li>
 * </ul>
 * While such a transaction runs under the application's election grant, it counts as leader work in flight: a
 * shutting-down application lets it finish before releasing the lease (see {@link LeaderElection}).
 *
 * <p>Which grant fences: the one passed to {@link #execute(LeaseGrant, TransactionCallback)}; otherwise the grant the
 * calling code runs under ({@link FencingContext#current()}: an enclosing fenced call's, a {@link LeaderOnly}
 * method's leadership, a ShedLock task's lock); otherwise the application's current leadership
 * ({@link LeaderElection}). While the callback runs, {@link FencingContext#current()} is that grant.
 *
 * <p>Do not call {@code PgLease.inFencedTransaction} inside a Spring transaction: it takes its own connection, so
 * the Spring transaction's writes are not fenced and commit separately.
 */
public class FencedTransactionTemplate {

    private static final Logger LOG = LoggerFactory.getLogger(FencedTransactionTemplate.class);

    private final PgLease pglease;
    private final DataSource dataSource;
    private final PlatformTransactionManager transactionManager;
    private final LeaderElection election;
    private final SQLExceptionTranslator translator;

    /**
     * @param dataSource         the data source the transaction manager binds connections for (the one the
     *                           application's {@code JdbcTemplate} uses)
     * @param transactionManager opens a transaction when none is active
     * @param election           source of the grant when the calling code runs under none; may be null when every
     *                           fenced call has a grant (passed, or from the {@link FencingContext})
     * @throws IllegalArgumentException when the transaction manager manages another data source
     */
    public FencedTransactionTemplate(
            PgLease pglease,
            DataSource dataSource,
            PlatformTransactionManager transactionManager,
            LeaderElection election) {
        this.pglease = Objects.requireNonNull(pglease, "pglease must not be null");
        this.dataSource = Objects.requireNonNull(dataSource, "dataSource must not be null");
        this.transactionManager = Objects.requireNonNull(transactionManager, "transactionManager must not be null");
        this.election = election;
        if (transactionManager instanceof ResourceTransactionManager rtm && rtm.getResourceFactory() != dataSource) {
            throw new IllegalArgumentException("the transaction manager " + transactionManager + " manages "
                    + rtm.getResourceFactory() + ", not the data source pglease fences (" + dataSource + "): fenced "
                    + "writes would not be in the fenced transaction; give both the same DataSource");
        }
        this.translator = new SQLErrorCodeSQLExceptionTranslator(dataSource);
    }

    /**
     * Runs {@code action} in a fenced transaction under the grant the calling code runs under (see the class
     * comment), or this application's grant ({@link LeaderElection}): joins the Spring transaction in progress, or
     * opens one.
     *
     * @throws LeaseException LEASE_LOST when this process does not lead (or is draining), or lost the grant before
     *                        the transaction ended; STALE_TOKEN when the database no longer lists its grant; the
     *                        transaction is rolled back
     */
    public <T> T execute(TransactionCallback<T> action) {
        Objects.requireNonNull(action, "action must not be null");
        return run(null, action);
    }

    /**
     * Runs {@code action} in a transaction fenced by {@code grant} (a {@link Leadership}, or a {@code LeaseLock}):
     * joins the Spring transaction in progress, or opens one.
     *
     * @throws LeaseException LEASE_LOST when the grant's deadline passed (before or while the transaction ran),
     *                        STALE_TOKEN when the database no longer lists it; the transaction is rolled back
     */
    public <T> T execute(LeaseGrant grant, TransactionCallback<T> action) {
        Objects.requireNonNull(grant, "grant must not be null");
        Objects.requireNonNull(action, "action must not be null");
        return run(grant, action);
    }

    /**
     * Fences the Spring transaction in progress with the grant the calling code runs under (see the class comment)
     * or this application's grant; call it first in a {@code @Transactional} method, before the protected writes
     * (or mark the method {@link Fenced}).
     *
     * @return the grant the transaction is fenced with
     * @throws IllegalStateException when no Spring transaction is active
     * @throws LeaseException        LEASE_LOST when this process does not lead (or is draining), STALE_TOKEN when
     *                               the database no longer lists its grant
     */
    public LeaseGrant fenceCurrentTransaction() {
        return fenceWithCurrentGrant(null).grant;
    }

    /**
     * Fences the transaction a {@link Fenced} method's own {@code @Transactional} attributes opened or joined, right
     * before the method body runs (Spring's transaction advice around it is the innermost one): its connection, as
     * the transaction manager named by those attributes holds it, whatever their propagation and isolation. That
     * transaction manager must manage this template's data source.
     *
     * @param method     the method, for the messages
     * @param attributes its transaction attributes
     * @throws IllegalStateException when the body runs in no transaction ({@code NOT_SUPPORTED}, {@code NEVER},
     *                               {@code SUPPORTS} without one), in a read-only one, in one of a transaction
     *                               manager that holds no connection of this template's data source, or in a new
     *                               one whose commit Spring runs without its callbacks (inside a transaction of
     *                               another transaction manager)
     */
    FencedBy fenceMethodTransaction(String method, TransactionAttribute attributes) {
        TransactionStatus status;
        try {
            status = TransactionAspectSupport.currentTransactionStatus();
        } catch (NoTransactionException e) {
            throw new IllegalStateException(
                    method + " is @Fenced and @Transactional, but no Spring transaction "
                            + "advice runs around it: enable transaction management (@EnableTransactionManagement)",
                    e);
        }
        String declared = "@Transactional(propagation = " + propagation(attributes) + ")";
        if (!(status instanceof DefaultTransactionStatus running) || !running.hasTransaction()) {
            throw new IllegalStateException(method + " is @Fenced, but its " + declared + " runs it outside any "
                    + "transaction, so there is nothing to fence: a fence belongs to the transaction that makes the "
                    + "writes; declare REQUIRED, REQUIRES_NEW, NESTED or MANDATORY (or call it inside a transaction)");
        }
        if (running.isNewTransaction() && !running.isNewSynchronization()) {
            throw new IllegalStateException(method + " is @Fenced, but its " + declared + " opens a transaction of "
                    + "its transaction manager inside a transaction of another one, whose commit Spring runs "
                    + "without the callbacks a fence needs (the check of the grant before commit): call it outside "
                    + "that transaction, or declare REQUIRES_NEW on the same transaction manager as the caller");
        }
        if (running.isNewTransaction() && running.isReadOnly()) {
            throw new IllegalStateException(method + " is @Fenced, but its @Transactional(readOnly = true) opens a "
                    + "read-only transaction, which can not lock the lease row: fenced writes need a read-write one");
        }
        if (!(running.getTransaction() instanceof JdbcTransactionObjectSupport jdbc) || !jdbc.hasConnectionHolder()) {
            throw new IllegalStateException(method + " is @Fenced, but the transaction manager of its @Transactional "
                    + "holds no JDBC connection (" + running.getTransaction() + "): a fence locks the lease row on the "
                    + "connection of the transaction that makes the writes; use a DataSourceTransactionManager, "
                    + "JdbcTransactionManager or JpaTransactionManager on the DataSource pglease fences");
        }
        if (TransactionSynchronizationManager.getResource(dataSource) != jdbc.getConnectionHolder()) {
            String manager = attributes.getQualifier() == null
                            || attributes.getQualifier().isEmpty()
                    ? "its transaction manager"
                    : "transaction manager " + Names.quote(attributes.getQualifier());
            throw new IllegalStateException(method + " is @Fenced, but its @Transactional runs it in a transaction of "
                    + manager + " on another DataSource than the one pglease fences (" + dataSource + "): "
                    + "writes through that DataSource would not be in the fenced transaction; fence writes to the "
                    + "lease's database through that DataSource and its transaction manager");
        }
        return fenceWithCurrentGrant(jdbc.getConnectionHolder().getConnection());
    }

    private static String propagation(TransactionAttribute attributes) {
        return switch (attributes.getPropagationBehavior()) {
            case TransactionDefinition.PROPAGATION_REQUIRED -> "REQUIRED";
            case TransactionDefinition.PROPAGATION_SUPPORTS -> "SUPPORTS";
            case TransactionDefinition.PROPAGATION_MANDATORY -> "MANDATORY";
            case TransactionDefinition.PROPAGATION_REQUIRES_NEW -> "REQUIRES_NEW";
            case TransactionDefinition.PROPAGATION_NOT_SUPPORTED -> "NOT_SUPPORTED";
            case TransactionDefinition.PROPAGATION_NEVER -> "NEVER";
            case TransactionDefinition.PROPAGATION_NESTED -> "NESTED";
            default -> String.valueOf(attributes.getPropagationBehavior());
        };
    }

    private <T> T run(LeaseGrant explicit, TransactionCallback<T> action) {
        if (transactionManager instanceof CallbackPreferringPlatformTransactionManager) {
            FencedBy[] fenced = new FencedBy[1];
            try {
                return new TransactionTemplate(transactionManager).execute(status -> {
                    fenced[0] = explicit == null ? fenceWithCurrentGrant(null) : fence(explicit, false, null);
                    try (FencingContext.Scope running = FencingContext.enter(fenced[0].grant)) {
                        return action.doInTransaction(status);
                    }
                });
            } catch (RuntimeException | Error e) {
                throw outcome(e, fenced[0], null);
            }
        }
        TransactionStatus status = transactionManager.getTransaction(TransactionDefinition.withDefaults());
        FencedBy fenced = null;
        T result;
        try {
            fenced = explicit == null ? fenceWithCurrentGrant(null) : fence(explicit, false, null);
            try (FencingContext.Scope running = FencingContext.enter(fenced.grant)) {
                result = action.doInTransaction(status);
            }
        } catch (RuntimeException | Error e) {
            throw outcome(e, fenced, rollback(status, e));
        }
        try {
            transactionManager.commit(status);
        } catch (RuntimeException | Error e) {
            throw outcome(e, fenced, null);
        }
        return result;
    }

    /** Rolls back after {@code failure}; returns the rollback's own failure, if any. */
    private Throwable rollback(TransactionStatus status, Throwable failure) {
        try {
            transactionManager.rollback(status);
            return null;
        } catch (TransactionSystemException e) {
            e.initApplicationException(failure);
            return e;
        } catch (RuntimeException | Error e) {
            return e;
        }
    }

    /**
     * What a failed fenced transaction throws: a {@link LeaseException} as it is; {@code LEASE_LOST} when the grant
     * was lost (its deadline passed, or it aborted the connection) and what failed was the database or the
     * transaction (which losing it explains), with that failure as the cause; otherwise the failure itself, or the
     * rollback's failure over it, as Spring's {@code TransactionTemplate} does.
     */
    private RuntimeException outcome(Throwable failure, FencedBy fenced, Throwable rollbackFailure) {
        LeaseException lost = lost(failure, fenced, rollbackFailure);
        if (lost != null) {
            return lost;
        }
        if (rollbackFailure != null) {
            LOG.error("Application exception overridden by rollback exception", failure);
        }
        Throwable thrown = rollbackFailure != null ? rollbackFailure : failure;
        if (thrown instanceof Error e) {
            throw e;
        }
        return (RuntimeException) thrown;
    }

    /**
     * What the transaction boundary of a {@link Fenced} method with its own {@code @Transactional} threw, as the
     * method reports it: as {@link #outcome}, with a rollback's failure ({@code TransactionSystemException} carrying
     * the method's exception) taken apart first.
     */
    Throwable boundaryOutcome(Throwable thrown, FencedBy fenced) {
        Throwable failure = thrown;
        Throwable rollbackFailure = null;
        if (thrown instanceof TransactionSystemException e && e.getApplicationException() != null) {
            failure = e.getApplicationException();
            rollbackFailure = e;
        }
        LeaseException lost = lost(failure, fenced, rollbackFailure);
        return lost != null ? lost : thrown;
    }

    /**
     * The {@link LeaseException} a failed fenced transaction ends in, or null: the failure itself when it is one (a
     * rollback's failure after it added as suppressed); {@code LEASE_LOST} when the grant was lost (its deadline
     * passed, or it aborted the connection) and what failed was the database or the transaction (which losing it
     * explains), with that failure as the cause.
     */
    private static LeaseException lost(Throwable failure, FencedBy fenced, Throwable rollbackFailure) {
        Throwable cause = failure instanceof FencedBeanPostProcessor.CheckedException c ? c.getCause() : failure;
        if (failure instanceof LeaseException e) {
            if (rollbackFailure != null && fenced != null) {
                e.addSuppressed(rollbackFailure);
                return e;
            }
            return rollbackFailure == null ? e : null;
        }
        if (fenced == null || !resourceFailure(cause)) {
            return null;
        }
        Optional<FenceDeadlines.Watch> aborted = fenced.transaction.aborted();
        if (aborted.isEmpty() && fenced.grant.isValid()) {
            return null;
        }
        LeaseException lost = aborted.isPresent()
                ? Transactions.lost(aborted.get(), cause)
                : new LeaseException(
                        LeaseException.Reason.LEASE_LOST,
                        "lease " + Names.quote(fenced.grant.leaseName()) + " (token " + fenced.grant.token()
                                + ") was lost before its fenced transaction ended (its local deadline passed)"
                                + (fenced.transaction.commitAllowed()
                                        ? ": its commit failed, so whether it committed is unknown here (the "
                                                + "lease row lock held any successor off until it ended)"
                                        : ": the transaction was rolled back"),
                        cause);
        if (rollbackFailure != null) {
            lost.addSuppressed(rollbackFailure);
        }
        return lost;
    }

    private static boolean resourceFailure(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof SQLException || c instanceof DataAccessException || c instanceof TransactionException) {
                return true;
            }
        }
        return false;
    }

    /**
     * Fences with the grant the calling code runs under, or the election's current grant (counted as work): the
     * transaction's {@code connection}, or when null the connection Spring holds for the data source.
     */
    private FencedBy fenceWithCurrentGrant(Connection connection) {
        Optional<LeaseGrant> running = FencingContext.current();
        if (running.isPresent()) {
            // inside a @LeaderOnly run, a ShedLock task or an enclosing fenced call: counted there, if at all
            return fence(running.get(), false, connection);
        }
        if (election == null) {
            throw new IllegalStateException("no LeaderElection to take the grant from, and the calling code runs "
                    + "under no grant: pass the grant to execute(grant, action)");
        }
        requireTransaction();
        Leadership leadership = election.beginWork()
                .orElseThrow(() -> new LeaseException(
                        LeaseException.Reason.LEASE_LOST,
                        "this process does not lead lease " + election.leaseName()
                                + " (or is shutting down): the transaction is rolled back"));
        return fence(leadership, true, connection);
    }

    /** A grant and the transaction it fenced. */
    record FencedBy(LeaseGrant grant, TransactionFence transaction) {}

    /**
     * Fences the transaction in progress with {@code grant}, every time (one statement): after a rollback to a
     * savepoint, or in a new transaction on another connection, an earlier fence no longer holds.
     */
    private FencedBy fence(LeaseGrant grant, boolean counted, Connection connection) {
        TransactionFence transaction;
        try {
            requireTransaction();
            transaction = currentFence();
            if (transaction == null) {
                transaction = new TransactionFence(this, pglease, dataSource, election, this::translate);
                TransactionSynchronizationManager.registerSynchronization(transaction);
            }
            transaction.fenceWith(grant, connection);
        } catch (RuntimeException | Error e) {
            if (counted) {
                election.endWork(); // no synchronization counts it
            }
            throw e;
        }
        transaction.counted(counted);
        return new FencedBy(grant, transaction);
    }

    /** This template's fence of the transaction in progress (a suspended transaction's is not in the list). */
    private TransactionFence currentFence() {
        for (TransactionSynchronization s : TransactionSynchronizationManager.getSynchronizations()) {
            if (s instanceof TransactionFence f && f.template() == this) {
                return f;
            }
        }
        return null;
    }

    private static void requireTransaction() {
        if (!TransactionSynchronizationManager.isActualTransactionActive()) {
            throw new IllegalStateException("a fenced write needs a Spring transaction: call it inside a "
                    + "@Transactional method or use FencedTransactionTemplate.execute");
        }
    }

    private RuntimeException translate(SQLException e) {
        RuntimeException translated = translator.translate("fence the transaction", null, e);
        return translated != null ? translated : new IllegalStateException(e.getMessage(), e);
    }
}
