package dev.pglease.internal.group;

import dev.pglease.internal.util.Timings;
import java.sql.Connection;
import java.sql.SQLException;
import javax.sql.DataSource;

/** The connections one member borrows from the application's data source: autocommit, with the network timeout. */
final class MemberConnections {

    private final DataSource dataSource;
    private final int networkTimeoutMillis;

    MemberConnections(DataSource dataSource, Timings timings) {
        this.dataSource = dataSource;
        this.networkTimeoutMillis =
                (int) Math.min(Integer.MAX_VALUE, timings.networkTimeout().toMillis());
    }

    Connection open() throws SQLException {
        Connection c = dataSource.getConnection();
        try {
            c.setNetworkTimeout(Runnable::run, networkTimeoutMillis);
            if (!c.getAutoCommit()) {
                c.setAutoCommit(true);
            }
        } catch (SQLException | RuntimeException e) {
            c.close();
            throw e;
        }
        return c;
    }
}
