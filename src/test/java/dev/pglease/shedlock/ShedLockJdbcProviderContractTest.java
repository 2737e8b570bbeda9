package dev.pglease.shedlock;

import dev.pglease.TestDatabase;
import java.util.concurrent.atomic.AtomicInteger;
import javax.sql.DataSource;
import net.javacrumbs.shedlock.core.LockProvider;
import net.javacrumbs.shedlock.provider.jdbctemplate.JdbcTemplateLockProvider;
import org.junit.jupiter.api.BeforeAll;
import org.springframework.jdbc.core.JdbcTemplate;

/** Control: ShedLock's own JDBC provider passes the same contract (database time, as its docs recommend). */
class ShedLockJdbcProviderContractTest extends LockProviderContract {

    private final AtomicInteger nodes = new AtomicInteger();
    private DataSource dataSource;
    private String table;

    @BeforeAll
    void createTable() {
        String schema = TestDatabase.freshSchema();
        table = schema + ".shedlock";
        TestDatabase.execute(ShedLockTables.ddl(table));
        dataSource = TestDatabase.dataSource();
    }

    @Override
    protected LockProvider newNode() {
        return ShedLockTables.jdbcProvider(dataSource, table, "node-" + nodes.incrementAndGet());
    }

    @Override
    protected void closeNodes() {
        // stateless
    }

    /** The table and provider set-up ShedLock documents for PostgreSQL. */
    static final class ShedLockTables {
        private ShedLockTables() {}

        static String ddl(String table) {
            return "CREATE TABLE " + table + " (name VARCHAR(64) NOT NULL PRIMARY KEY, lock_until TIMESTAMP NOT NULL,"
                    + " locked_at TIMESTAMP NOT NULL, locked_by VARCHAR(255) NOT NULL)";
        }

        static LockProvider jdbcProvider(DataSource dataSource, String table, String node) {
            return new JdbcTemplateLockProvider(JdbcTemplateLockProvider.Configuration.builder()
                    .withJdbcTemplate(new JdbcTemplate(dataSource))
                    .withTableName(table)
                    .withLockedByValue(node)
                    .usingDbTime()
                    .build());
        }
    }
}
