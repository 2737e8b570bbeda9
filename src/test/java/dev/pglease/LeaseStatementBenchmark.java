package dev.pglease;

import com.zaxxer.hikari.HikariDataSource;
import dev.pglease.bench.BenchDatabase;
import dev.pglease.internal.sql.LeaseStatements;
import dev.pglease.internal.store.JdbcLeaseStore;
import dev.pglease.internal.store.LeaseStore;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Lock;
import net.javacrumbs.shedlock.core.LockConfiguration;
import net.javacrumbs.shedlock.core.SimpleLock;
import net.javacrumbs.shedlock.provider.jdbctemplate.JdbcTemplateLockProvider;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.springframework.integration.jdbc.lock.DefaultLockRepository;
import org.springframework.integration.jdbc.lock.JdbcLockRegistry;
import org.springframework.jdbc.core.JdbcTemplate;
import org.springframework.jdbc.datasource.DataSourceTransactionManager;

/**
 * Per-call cost of the lease statements through the library (the election loop's {@link JdbcLeaseStore} on its
 * dedicated connection), of a fenced write against the same plain write, and of the two Spring lock round trips
 * on the same server. Mode SampleTime: every call is timed, so the run reports p50 and p99. Run with
 * {@code scripts/bench.sh} or {@code dev.pglease.bench.JmhLauncher}.
 */
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class LeaseStatementBenchmark {

    static final Duration TTL = Duration.ofSeconds(60);

    @State(Scope.Benchmark)
    public static class Db {
        BenchDatabase db;
        String schema;
        HikariDataSource pool;
        JdbcLeaseStore leader;
        JdbcLeaseStore standby;
        LeaseStatements sql;
        String leaderId;
        String standbyId;
        long heldToken;
        String held;
        String toggle;
        java.util.List<LeaseStore.Held> heldList;
        PgLease pglease;
        Elector elector;
        Leadership leadership;
        JdbcTemplateLockProvider shedlock;
        JdbcLockRegistry springRegistry;

        @Setup(Level.Trial)
        public void setUp() throws Exception {
            db = BenchDatabase.start();
            schema = sharedSchema(db);
            String id = Long.toString(System.nanoTime(), 36);
            held = "held-" + id;
            toggle = "toggle-" + id;
            pool = db.pool(4, "jmh");
            sql = new LeaseStatements(schema);
            leaderId = "bench-leader/" + ProcessHandle.current().pid() + "/" + id;
            standbyId = "bench-standby/" + ProcessHandle.current().pid() + "/" + id;
            leader = new JdbcLeaseStore(db.dataSource(), sql, Duration.ofSeconds(30), Duration.ofSeconds(15), false);
            standby = new JdbcLeaseStore(db.dataSource(), sql, Duration.ofSeconds(30), Duration.ofSeconds(15), false);
            LeaseStore.Acquired a = leader.acquire(held, leaderId, TTL);
            heldToken = a.token();
            heldList = java.util.List.of(new LeaseStore.Held(held, heldToken, TTL.toMillis()));
            leader.acquire(toggle, leaderId, TTL);
            leader.release(toggle, leaderId, 1);

            db.execute(
                    "CREATE TABLE IF NOT EXISTS " + schema + ".counter (name text PRIMARY KEY, value bigint NOT NULL)");
            db.execute("INSERT INTO " + schema + ".counter VALUES ('c', 0) ON CONFLICT DO NOTHING");
            pglease = PgLease.create(
                    pool,
                    LeaseConfig.builder()
                            .schema(schema)
                            .leaseDuration(Duration.ofSeconds(30))
                            .renewDeadline(Duration.ofSeconds(20))
                            .retryPeriod(Duration.ofSeconds(5))
                            .holderLabel("jmh")
                            .build());
            elector = pglease.elector("fenced-" + id, new LeaderListener() {
                @Override
                public void onElected(Leadership l) {}

                @Override
                public void onRevoked(Leadership l) {}
            });
            leadership = elector.awaitLeadership(Duration.ofSeconds(30)).orElseThrow();
            try (Connection c = pool.getConnection()) {
                ForwardFence.createTable(c, schema + ".fences");
            }

            db.execute("CREATE TABLE IF NOT EXISTS shedlock (name VARCHAR(64) NOT NULL, lock_until TIMESTAMP NOT NULL, "
                    + "locked_at TIMESTAMP NOT NULL, locked_by VARCHAR(255) NOT NULL, PRIMARY KEY (name))");
            shedlock = new JdbcTemplateLockProvider(JdbcTemplateLockProvider.Configuration.builder()
                    .withJdbcTemplate(new JdbcTemplate(pool))
                    .usingDbTime()
                    .build());

            db.execute("CREATE TABLE IF NOT EXISTS INT_LOCK (LOCK_KEY CHAR(36) NOT NULL, REGION VARCHAR(100) NOT NULL, "
                    + "CLIENT_ID CHAR(36), CREATED_DATE TIMESTAMP NOT NULL, EXPIRED_AFTER TIMESTAMP NOT NULL, "
                    + "constraint INT_LOCK_PK primary key (LOCK_KEY, REGION))");
            DefaultLockRepository repository = new DefaultLockRepository(pool);
            repository.setTransactionManager(new DataSourceTransactionManager(pool));
            repository.afterPropertiesSet();
            repository.afterSingletonsInstantiated();
            springRegistry = new JdbcLockRegistry(repository);
        }

        private static String sharedSchema;

        /** One migrated schema per JVM (a smoke run executes every benchmark in one JVM). */
        private static synchronized String sharedSchema(BenchDatabase db) {
            if (sharedSchema == null) {
                sharedSchema = "jmh" + ProcessHandle.current().pid() + "_"
                        + Long.toString(System.nanoTime() % 1_000_000_000L, 36);
                PgLease.migrate(db.dataSource(), sharedSchema);
            }
            return sharedSchema;
        }

        @TearDown(Level.Trial)
        public void tearDown() throws SQLException {
            leader.release(held, leaderId, heldToken);
            elector.close();
            pglease.close();
            leader.close();
            standby.close();
            pool.close();
            db.close();
        }
    }

    /** The lease "toggle" is free before every acquire (released outside the timed call). */
    @State(Scope.Thread)
    public static class Free {
        long token;

        @Setup(Level.Invocation)
        public void release(Db db) throws SQLException {
            if (token != 0) {
                db.leader.release(db.toggle, db.leaderId, token);
                token = 0;
            }
        }
    }

    /** The lease "toggle" is held before every release (acquired outside the timed call). */
    @State(Scope.Thread)
    public static class Held {
        long token;

        @Setup(Level.Invocation)
        public void acquire(Db db) throws SQLException {
            LeaseStore.Acquired a = db.leader.acquire(db.toggle, db.leaderId, TTL);
            token = a.granted() ? a.token() : 0;
        }
    }

    /** Renewing one held lease: the leader's statement every retryPeriod. */
    @Benchmark
    public LeaseStore.Renewal renew(Db db) throws SQLException {
        return db.leader.renew(db.leaderId, db.heldList);
    }

    /** Acquiring a free (released) lease: the row is updated and the token bumped. */
    @Benchmark
    public long acquireGranted(Db db, Free free) throws SQLException {
        LeaseStore.Acquired a = db.leader.acquire(db.toggle, db.leaderId, TTL);
        free.token = a.token();
        return a.token();
    }

    /** A standby's attempt on a held lease: denied, told who holds it and how long remains. */
    @Benchmark
    public long acquireDenied(Db db) throws SQLException {
        return db.standby.acquire(db.held, db.standbyId, TTL).waitMillis();
    }

    /** Graceful release of a held lease. */
    @Benchmark
    public boolean release(Db db, Held held) throws SQLException {
        return db.leader.release(db.toggle, db.leaderId, held.token);
    }

    /** The write an application protects, without protection: one UPDATE in a transaction from the pool. */
    @Benchmark
    public int plainWrite(Db db) throws SQLException {
        try (Connection c = db.pool.getConnection()) {
            c.setAutoCommit(false);
            try {
                int n = increment(c, db.schema);
                c.commit();
                return n;
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            } finally {
                c.setAutoCommit(true);
            }
        }
    }

    /** The same write through {@link PgLease#inFencedTransaction}: SELECT ... FOR SHARE on the lease row first. */
    @Benchmark
    public int fencedWrite(Db db) throws SQLException {
        return db.pglease.inFencedTransaction(db.leadership, c -> increment(c, db.schema));
    }

    /** The same write guarded by a forward-only fence row (for resources in another database). */
    @Benchmark
    public int forwardFenceWrite(Db db) throws SQLException {
        return db.pglease.forwardFence().inTransaction(db.pool, "counter", db.leadership, c -> increment(c, db.schema));
    }

    /** Anchor: ShedLock JdbcTemplateLockProvider (database time), lock and unlock on the same server. */
    @Benchmark
    public boolean shedlockLockUnlock(Db db) {
        SimpleLock lock = db.shedlock
                .lock(new LockConfiguration(Instant.now(), "bench", Duration.ofSeconds(30), Duration.ZERO))
                .orElseThrow();
        lock.unlock();
        return true;
    }

    /** Anchor: Spring Integration JdbcLockRegistry, lock and unlock on the same server. */
    @Benchmark
    public boolean springIntegrationLockUnlock(Db db) {
        Lock lock = db.springRegistry.obtain("bench");
        lock.lock();
        lock.unlock();
        return true;
    }

    private static int increment(Connection c, String schema) throws SQLException {
        try (PreparedStatement ps =
                c.prepareStatement("UPDATE " + schema + ".counter SET value = value + 1 WHERE name = 'c'")) {
            return ps.executeUpdate();
        }
    }
}
