package dev.pglease;

import java.sql.Connection;
import java.sql.SQLException;

/**
 * Work run inside a fenced transaction. The connection is in a transaction that pglease commits when the work
 * returns and rolls back when it throws; do not commit, roll back or change auto-commit yourself.
 *
 * @param <T> the result type
 */
@FunctionalInterface
public interface FencedWork<T> {

    T execute(Connection connection) throws SQLException;
}
