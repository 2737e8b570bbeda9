package dev.pglease.spring;

import dev.pglease.Leadership;
import dev.pglease.LeaseException;
import dev.pglease.LeaseGrant;
import dev.pglease.PgLease;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Objects;
import java.util.Optional;
import javax.sql.DataSource;
import org.springframework.jdbc.datasource.DataSourceUtils;
import org.springframework.jdbc.support.SQLErrorCodeSQLExceptionTranslator;
import org.springframework.jdbc.support.SQLExceptionTranslator;
import org.springframework.transaction.PlatformTransactionManager;
import org.springframework.transaction.support.ResourceTransactionManager;
import org.springframework.transaction.support.TransactionCallback;
import org.springframework.transaction.support.TransactionSynchronization;
import org.springframework.transaction.support.TransactionSynchronizationManager;
import org.springframework.transaction.support.TransactionTemplate;

/**
 * Fenced writes inside Spring transactions: the Spring transaction itself (the one a {@code @Transactional} method
 * or a {@link TransactionTemplate} opened on the application's {@code DataSource}) is fenced with
 * {@link PgLease#fenceTransaction}, so {@code JdbcTemplate}, jOOQ or any other code that takes its connection from Spring
 * writes under the fence, and commits or rolls back with everything else in that transaction:
 * <ul>
 *   <li>the fence is taken on the transaction's own connection (through {@link DataSourceUtils}): the lease row is
 *       locked {@code FOR KEY SHARE} if this holder still has the lease with this token, so a takeover waits until
 *       the transaction ends; the transaction is bounded on the server by the grant's remaining validity and
 *       commits durably;</li>
 *   <li>just before commit the grant is checked again ({@link LeaseGrant#isValid()}); if its deadline passed, the
 *       commit is refused and the whole transaction rolled back;</li>
 *   <li>a stale or lost lease throws {@link LeaseException} ({@code STALE_TOKEN}, {@code LEASE_LOST}), which rolls
 *       the whole Spring transaction back.</li>
 * </ul>
 * While such a transaction runs, it counts as leader work in flight: a shutting-down application lets it finish
 * before releasing the lease (see {@link LeaderElection}).
 *
 * <p>Do not call {@code PgLease.inFencedTransaction} inside a Spring transaction: it takes its own connection, so
 * the Spring transaction's writes are not fenced and commit separately.
 */
public class FencedTransactionTemplate {

    private final PgLease pglease;
    private final DataSource dataSource;
    private final PlatformTransactionManager transactionManager;
    private final LeaderElection election;
    private final SQLExceptionTranslator translator;

    /**
     * @param dataSource         the data source the transaction manager binds connections for (the one the
     *                           application's {@code JdbcTemplate} uses)
     * @param transactionManager opens a transaction when none is active
     * @param election           source of the grant for {@link #execute(TransactionCallback)}; may be null when only
     *                           {@link #execute(LeaseGrant, TransactionCallback)} is used
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
     * Runs {@code action} in a fenced transaction under this application's grant ({@link LeaderElection}): joins the
     * Spring transaction in progress, or opens one.
     *
     * @throws LeaseException LEASE_LOST when this process does not lead (or is draining), STALE_TOKEN when the
     *                        database no longer lists its grant; the transaction is rolled back
     */
    public <T> T execute(TransactionCallback<T> action) {
        Objects.requireNonNull(action, "action must not be null");
        return new TransactionTemplate(transactionManager).execute(status -> {
            fenceCurrentTransaction();
            return action.doInTransaction(status);
        });
    }

    /**
     * Runs {@code action} in a transaction fenced by {@code grant} (a {@link Leadership}, or a {@code LeaseLock}):
     * joins the Spring transaction in progress, or opens one.
     *
     * @throws LeaseException LEASE_LOST when the grant's deadline passed, STALE_TOKEN when the database no longer
     *                        lists it; the transaction is rolled back
     */
    public <T> T execute(LeaseGrant grant, TransactionCallback<T> action) {
        Objects.requireNonNull(grant, "grant must not be null");
        Objects.requireNonNull(action, "action must not be null");
        return new TransactionTemplate(transactionManager).execute(status -> {
            fence(grant, false);
            return action.doInTransaction(status);
        });
    }

    /**
     * Fences the Spring transaction in progress with this application's grant; call it first in a
     * {@code @Transactional} method, before the protected writes (or mark the method {@link Fenced}).
     *
     * @return the grant the transaction is fenced with
     * @throws IllegalStateException when no Spring transaction is active
     * @throws LeaseException        LEASE_LOST when this process does not lead (or is draining), STALE_TOKEN when
     *                               the database no longer lists its grant
     */
    public Leadership fenceCurrentTransaction() {
        Optional<Leadership> running = LeaderOnlyBeanPostProcessor.currentLeadership();
        if (running.isPresent()) {
            // inside a @LeaderOnly run: already counted as work in flight
            return fenced(running.get(), false);
        }
        if (election == null) {
            throw new IllegalStateException("no LeaderElection to take the grant from: pass the Leadership");
        }
        requireTransaction();
        Leadership leadership = election.beginWork()
                .orElseThrow(() -> new LeaseException(
                        LeaseException.Reason.LEASE_LOST,
                        "this process does not lead lease " + election.leaseName()
                                + " (or is shutting down): the transaction is rolled back"));
        try {
            return fenced(leadership, true);
        } catch (RuntimeException | Error e) {
            election.endWork(); // no synchronization was registered to end it
            throw e;
        }
    }

    /** {@link #fence} by an elector's grant: the grant the transaction is fenced with. */
    private Leadership fenced(Leadership leadership, boolean counted) {
        return fence(leadership, counted) instanceof Leadership fencedWith ? fencedWith : leadership;
    }

    private LeaseGrant fence(LeaseGrant grant, boolean counted) {
        requireTransaction();
        Object key = new Key(this, grant.leaseName());
        LeaseGrant already = (LeaseGrant) TransactionSynchronizationManager.getResource(key);
        if (already != null && already.token() == grant.token()) {
            if (counted) {
                election.endWork(); // counted once, by the first fence of this transaction
            }
            return already;
        }
        Connection connection = DataSourceUtils.getConnection(dataSource);
        try {
            pglease.fenceTransaction(connection, grant);
        } catch (SQLException e) {
            throw translate(e);
        } finally {
            DataSourceUtils.releaseConnection(connection, dataSource);
        }
        if (already == null) {
            TransactionSynchronizationManager.bindResource(key, grant);
        }
        TransactionSynchronizationManager.registerSynchronization(new Guard(key, grant, counted));
        return grant;
    }

    private static void requireTransaction() {
        if (!TransactionSynchronizationManager.isActualTransactionActive()) {
            throw new IllegalStateException("a fenced write needs a Spring transaction: call it inside a "
                    + "@Transactional method or use FencedTransactionTemplate.execute");
        }
    }

    private RuntimeException translate(SQLException e) {
        RuntimeException translated = translator.translate("lock the lease row for a fenced transaction", null, e);
        return translated != null ? translated : new IllegalStateException(e.getMessage(), e);
    }

    private record Key(FencedTransactionTemplate template, String leaseName) {}

    /** Checks the grant again just before commit; unbinds and ends the work count when the transaction ends. */
    private final class Guard implements TransactionSynchronization {
        private final Object key;
        private final LeaseGrant grant;
        private final boolean counted;

        Guard(Object key, LeaseGrant grant, boolean counted) {
            this.key = key;
            this.grant = grant;
            this.counted = counted;
        }

        @Override
        public void beforeCommit(boolean readOnly) {
            grant.checkValid(); // LEASE_LOST: Spring rolls the whole transaction back
        }

        @Override
        public void afterCompletion(int status) {
            if (TransactionSynchronizationManager.hasResource(key)) {
                TransactionSynchronizationManager.unbindResource(key);
            }
            if (counted) {
                election.endWork();
            }
        }

        @Override
        public int getOrder() {
            return LOWEST_PRECEDENCE; // after the application's own beforeCommit work
        }
    }
}
