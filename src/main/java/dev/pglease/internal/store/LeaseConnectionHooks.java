package dev.pglease.internal.store;

import dev.pglease.internal.sql.LeaseStatements;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.List;

/**
 * What lease groups add to the statements of the lease connection ({@link JdbcLeaseStore}): the kind of each lease
 * a campaign acquires (the shards of a group are leases of kind {@code shard}), and the renewal, which renews the
 * process's member rows in the same statement as its leases.
 */
public interface LeaseConnectionHooks {

    /** The kind of lease {@code name}: {@link LeaseStatements.Kind#ELECTION} unless it is a shard of a group. */
    LeaseStatements.Kind kindOf(String name);

    /**
     * Renews {@code leases} of {@code holder} on {@code c} in one statement, with whatever else must ride along
     * (member rows); {@code plain} renews leases alone. May be called with no lease (member rows only).
     */
    LeaseStore.Renewal renew(Connection c, String holder, List<LeaseStore.Held> leases, LeaseStatements plain)
            throws SQLException;

    /**
     * Fast failover: on lease session {@code c}, before a shard of {@code holder} is acquired and registered there,
     * takes what the session must hold first (the members' own advisory locks). Nothing by default.
     */
    default void beforeShardAcquire(Connection c, String holder) throws SQLException {}
}
