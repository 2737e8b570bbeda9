package dev.pglease;

import java.sql.SQLException;
import java.time.Duration;
import java.util.List;

/** The three lease statements the election loop needs. The JDBC implementation is {@link JdbcLeaseStore}. */
interface LeaseStore extends AutoCloseable {

    LeaseSql.Acquired acquire(String name, String holder, Duration ttl) throws SQLException;

    /** Renews all the given leases in one round trip; returns the names renewed and the database clock. */
    LeaseSql.Renewal renew(String holder, List<LeaseSql.Held> leases) throws SQLException;

    boolean release(String name, String holder, long token) throws SQLException;

    @Override
    void close();
}
