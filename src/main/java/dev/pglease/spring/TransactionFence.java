package dev.pglease.spring;

import dev.pglease.LeaseGrant;
import dev.pglease.PgLease;
import dev.pglease.internal.util.FenceDeadlines;
import dev.pglease.internal.util.Transactions;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Function;
import javax.sql.DataSource;
import org.springframework.jdbc.datasource.DataSourceUtils;
import org.springframework.transaction.support.TransactionSynchronization;

/**
 * The fence of one Spring transaction (one connection): the grants it was fenced with, which of them a rollback
 * to a savepoint undid, the commit check, the end of the client-side deadline and of the work count.
 */
final class TransactionFence implements TransactionSynchronization {
    private final FencedTransactionTemplate template;
    private final PgLease pglease;
    private final DataSource dataSource;
    private final LeaderElection election;
    private final Function<SQLException, RuntimeException> translate;
    private final Map<String, LeaseGrant> grants = new LinkedHashMap<>();
    private final Map<String, Long> fencedAt = new HashMap<>();
    private final Map<Object, Long> savepoints = new HashMap<>();
    private final Set<String> undone = new LinkedHashSet<>();
    private long events;
    private Connection connection;
    private boolean counted;
    private volatile boolean commitAllowed;
    private volatile FenceDeadlines.Watch abortedAtEnd;

    TransactionFence(
            FencedTransactionTemplate template,
            PgLease pglease,
            DataSource dataSource,
            LeaderElection election,
            Function<SQLException, RuntimeException> translate) {
        this.template = template;
        this.pglease = pglease;
        this.dataSource = dataSource;
        this.election = election;
        this.translate = translate;
    }

    FencedTransactionTemplate template() {
        return template;
    }

    /**
     * Fences {@code held} (the transaction's connection; when null, the one Spring holds for the data source, and
     * once fenced always the connection of the first fence).
     */
    void fenceWith(LeaseGrant grant, Connection held) {
        Connection c =
                held != null ? held : connection != null ? connection : DataSourceUtils.getConnection(dataSource);
        try {
            if (connection != null && c != connection) {
                throw new IllegalStateException("one Spring transaction, two connections to fence (" + connection + ", "
                        + c + "): fence each transaction manager's transaction apart");
            }
            pglease.fenceTransaction(c, grant);
        } catch (SQLException e) {
            throw translate.apply(e);
        } finally {
            if (held == null && connection == null) {
                DataSourceUtils.releaseConnection(c, dataSource);
            }
        }
        if (connection == null) {
            connection = c;
        }
        grants.put(grant.leaseName(), grant);
        undone.remove(grant.leaseName());
        fencedAt.put(grant.leaseName(), ++events);
    }

    /** Counts the transaction as leader work once, however many counted fences it had. */
    void counted(boolean counted) {
        if (!counted) {
            return;
        }
        if (this.counted) {
            election.endWork();
        } else {
            this.counted = true;
        }
    }

    /** Whether the commit check passed, so a failure after it leaves the outcome of the commit unknown. */
    boolean commitAllowed() {
        return commitAllowed;
    }

    /** Whether the client-side deadline aborted this transaction's connection. */
    Optional<FenceDeadlines.Watch> aborted() {
        if (abortedAtEnd != null) {
            return Optional.of(abortedAtEnd);
        }
        return connection == null ? Optional.empty() : FenceDeadlines.aborted(connection);
    }

    @Override
    public void savepoint(Object savepoint) {
        savepoints.put(savepoint, ++events);
    }

    @Override
    public void savepointRollback(Object savepoint) {
        long since = savepoints.getOrDefault(savepoint, 0L);
        fencedAt.forEach((lease, at) -> {
            if (at > since) {
                undone.add(lease); // its row lock and bounds were taken after the savepoint
            }
        });
    }

    @Override
    public void beforeCommit(boolean readOnly) {
        grants.values().forEach(LeaseGrant::checkValid); // LEASE_LOST: Spring rolls the whole transaction back
        for (String lease : Set.copyOf(undone)) {
            fenceWith(grants.get(lease), null);
        }
        Optional<FenceDeadlines.Watch> aborted = FenceDeadlines.beginCommit(connection);
        if (aborted.isPresent()) {
            throw Transactions.lost(aborted.get(), null);
        }
        commitAllowed = true;
    }

    @Override
    public void afterCompletion(int status) {
        if (connection != null) {
            abortedAtEnd = FenceDeadlines.end(connection).orElse(null);
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
