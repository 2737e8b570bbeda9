package dev.pglease.shedlock;

import dev.pglease.LeaseConfig;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import java.util.ArrayList;
import java.util.List;
import javax.sql.DataSource;
import net.javacrumbs.shedlock.core.LockProvider;
import org.junit.jupiter.api.BeforeAll;

/** The pglease provider passes the ShedLock contract; each node is its own {@link PgLease} (its own holder id). */
class PgLeaseLockProviderContractTest extends LockProviderContract {

    private final List<PgLease> open = new ArrayList<>();
    private DataSource dataSource;
    private LeaseConfig config;

    @BeforeAll
    void migrate() {
        config = LeaseConfig.builder()
                .schema(TestDatabase.freshSchema())
                .holderLabel("shedlock")
                .build();
        dataSource = TestDatabase.dataSource();
    }

    @Override
    protected LockProvider newNode() {
        PgLease pglease = PgLease.create(dataSource, config);
        synchronized (open) {
            open.add(pglease);
        }
        return new PgLeaseLockProvider(pglease);
    }

    @Override
    protected void closeNodes() {
        synchronized (open) {
            open.forEach(PgLease::close);
            open.clear();
        }
    }
}
