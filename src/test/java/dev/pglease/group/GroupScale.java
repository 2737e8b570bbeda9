package dev.pglease.group;

import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import dev.pglease.GroupListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseGroup;
import dev.pglease.PgLease;
import dev.pglease.bench.BenchDatabase;
import java.lang.management.ManagementFactory;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The scale harness of lease groups: members of one group, each a {@link PgLease} of its own with its own small
 * connection pool, all in this JVM, against one PostgreSQL server ({@link BenchDatabase}: an embedded server with
 * {@code pg_stat_statements}, or the one at {@code PGLEASE_BENCH_JDBC_URL}). It measures, over a window of steady
 * state: the statements each member sends (counted by the server, top-level statements only), the server's CPU
 * (every server process, from {@code /proc}), this JVM's CPU, WAL bytes per second, and churn (grants assigned and
 * revoked, samples in which some shard was not held); and the rebalance after one join (time from the newcomer's
 * start to a balanced group, shards moved).
 */
final class GroupScale implements AutoCloseable {
    static {
        // hundreds of members hand shards over at each join: their INFO lines would cost the measurement (read when
        // the loggers are made, so it holds when nothing in this JVM made them before)
        System.setProperty("org.slf4j.simpleLogger.log.dev.pglease", "warn");
    }

    /**
     * What to run.
     *
     * @param shards  shards of the group
     * @param members members at the start
     */
    record Settings(int shards, int members, Duration leaseDuration, Duration renewDeadline, Duration retryPeriod) {
        String timing() {
            return leaseDuration.toMillis() + " ms / " + renewDeadline.toMillis() + " ms / " + retryPeriod.toMillis()
                    + " ms";
        }
    }

    /** One member: its pool, its PgLease, its group handle, and what its listener was told. */
    static final class Member implements GroupListener {
        final HikariDataSource pool;
        final PgLease pglease;
        LeaseGroup group;
        final AtomicLong assigned = new AtomicLong();
        final AtomicLong revoked = new AtomicLong();

        Member(HikariDataSource pool, PgLease pglease) {
            this.pool = pool;
            this.pglease = pglease;
        }

        @Override
        public void onAssigned(int shard, Leadership leadership) {
            assigned.incrementAndGet();
        }

        @Override
        public void onRevoked(int shard, Leadership leadership) {
            revoked.incrementAndGet();
        }
    }

    /**
     * A window of steady state.
     *
     * @param seconds          its length
     * @param statements       per statement kind: {calls, total execution time in µs, rows}
     * @param serverCpuCores   CPU time of every server process per second of the window
     * @param clientCpuCores   CPU time of this JVM (the members) per second
     * @param walBytesPerSecond WAL written per second
     * @param assigned         grants the members' listeners were told of in the window
     * @param revoked          grants revoked or handed over in the window
     * @param incomplete       samples (every 250 ms) in which some shard was not held
     * @param samples          samples taken
     */
    record Window(
            double seconds,
            Map<String, long[]> statements,
            double serverCpuCores,
            double clientCpuCores,
            double walBytesPerSecond,
            long assigned,
            long revoked,
            int incomplete,
            int samples) {

        long calls(String kind) {
            long[] s = statements.get(kind);
            return s == null ? 0 : s[0];
        }

        /** Calls of {@code kind} per member per retry period. */
        double perMemberPerRetryPeriod(String kind, int members, Duration retryPeriod) {
            return calls(kind) / (double) members / (seconds * 1000.0 / retryPeriod.toMillis());
        }

        String table() {
            StringBuilder sb = new StringBuilder();
            sb.append(String.format(
                    Locale.ROOT,
                    "| %-38s | %10s | %12s | %14s | %12s |%n",
                    "statement (server, top level)",
                    "calls/s",
                    "rows/call",
                    "exec ms per s",
                    "ms per call"));
            statements.forEach((k, v) -> sb.append(String.format(
                    Locale.ROOT,
                    "| %-38s | %10.1f | %12.1f | %14.1f | %12.3f |%n",
                    k,
                    v[0] / seconds,
                    v[0] == 0 ? 0.0 : v[2] / (double) v[0],
                    v[1] / 1000.0 / seconds,
                    v[0] == 0 ? 0.0 : v[1] / 1000.0 / v[0])));
            return sb.toString();
        }
    }

    private final BenchDatabase db;
    private final Settings s;
    private final String schema;
    private final String group = "scale";
    private final List<Member> members = new ArrayList<>();
    /** The harness's own connection (a fresh one per read would crowd the server's connection slots under load). */
    private final Connection own;

    private int labels;

    GroupScale(BenchDatabase db, Settings settings) {
        this.db = db;
        this.s = settings;
        this.schema = "pgl_scale_" + Long.toString(System.nanoTime() % 1_000_000_000L, 36);
        PgLease.migrate(db.dataSource(), schema);
        try {
            this.own = db.dataSource().getConnection();
        } catch (SQLException e) {
            throw new IllegalStateException("cannot connect to " + db.jdbcUrl(), e);
        }
    }

    private List<Object[]> query(String sql) {
        try (Statement st = own.createStatement();
                ResultSet rs = st.executeQuery(sql)) {
            List<Object[]> rows = new ArrayList<>();
            int n = rs.getMetaData().getColumnCount();
            while (rs.next()) {
                Object[] row = new Object[n];
                for (int i = 0; i < n; i++) {
                    row[i] = rs.getObject(i + 1);
                }
                rows.add(row);
            }
            return rows;
        } catch (SQLException e) {
            throw new IllegalStateException(sql + ": " + e.getMessage(), e);
        }
    }

    Settings settings() {
        return s;
    }

    List<Member> members() {
        return members;
    }

    /** Starts one member (its PgLease and its group handle); returns once it has joined. */
    Member join() {
        String label = "m" + (labels++);
        HikariConfig config = new HikariConfig();
        config.setJdbcUrl(db.jdbcUrl());
        config.setMaximumPoolSize(3); // the lease connection, the notification connection, one for reads
        config.setMinimumIdle(1);
        config.setPoolName("scale-" + label);
        HikariDataSource pool = new HikariDataSource(config);
        PgLease p = PgLease.create(
                pool,
                LeaseConfig.builder()
                        .schema(schema)
                        .holderLabel(label)
                        .leaseDuration(s.leaseDuration())
                        .renewDeadline(s.renewDeadline())
                        .retryPeriod(s.retryPeriod())
                        .build());
        Member m = new Member(pool, p);
        m.group = p.group(group, s.shards(), m);
        synchronized (members) {
            members.add(m);
        }
        return m;
    }

    /** Starts {@code count} members, a few at a time. */
    void joinAll(int count) throws InterruptedException {
        List<Thread> starters = new ArrayList<>();
        AtomicLong next = new AtomicLong();
        for (int t = 0; t < 4; t++) {
            Thread th = new Thread(() -> {
                while (next.getAndIncrement() < count) {
                    join();
                }
            });
            th.start();
            starters.add(th);
        }
        for (Thread th : starters) {
            th.join();
        }
    }

    /** Closes one member (it leaves and hands its shards over). */
    void leave(Member m) {
        synchronized (members) {
            members.remove(m);
        }
        m.pglease.close();
        m.pool.close();
    }

    /** The holder of each shard held (unexpired) now, from the database. */
    Map<Integer, String> owners() {
        Map<Integer, String> out = new HashMap<>();
        for (Object[] row : query("SELECT name, holder FROM " + schema + ".leases WHERE name LIKE '" + group
                + "/%' AND holder IS NOT NULL AND expires_at > clock_timestamp()")) {
            out.put(Integer.parseInt(((String) row[0]).substring(group.length() + 1)), (String) row[1]);
        }
        return out;
    }

    /** Whether every shard is held by a current member and the members' shard counts differ by at most one. */
    boolean balanced(Map<Integer, String> owners) {
        Map<String, Integer> counts = new TreeMap<>();
        synchronized (members) {
            for (Member m : members) {
                counts.put(m.pglease.holderId(), 0);
            }
        }
        for (String h : owners.values()) {
            if (counts.computeIfPresent(h, (k, v) -> v + 1) == null) {
                return false; // held by someone who is not a member (any more)
            }
        }
        if (owners.size() != s.shards() || counts.isEmpty()) {
            return false;
        }
        int min = counts.values().stream().mapToInt(Integer::intValue).min().orElse(0);
        int max = counts.values().stream().mapToInt(Integer::intValue).max().orElse(0);
        return max - min <= 1;
    }

    /** Waits until the group is balanced; the time waited in ms, or -1 after {@code timeoutMs}. */
    long awaitBalanced(long timeoutMs) throws InterruptedException {
        long start = System.nanoTime();
        long until = start + timeoutMs * 1_000_000;
        long report = start + 10_000_000_000L;
        while (System.nanoTime() < until) {
            Map<Integer, String> owners = owners();
            if (balanced(owners)) {
                return (System.nanoTime() - start) / 1_000_000;
            }
            if (System.nanoTime() > report) {
                report = System.nanoTime() + 10_000_000_000L;
                System.out.printf(
                        Locale.ROOT,
                        "group scale: %d s: %d of %d shards held, %d members, %s%n",
                        (System.nanoTime() - start) / 1_000_000_000L,
                        owners.size(),
                        s.shards(),
                        members.size(),
                        GroupScaleRun.load());
            }
            Thread.sleep(s.shards() > 2000 ? 200 : 20);
        }
        return -1;
    }

    /** Measures a window of {@code length}, sampling completeness every 250 ms. */
    Window measure(Duration length) throws InterruptedException {
        long assigned0 = sum(true);
        long revoked0 = sum(false);
        if (db.statementsAvailable()) {
            query("SELECT pg_stat_statements_reset()");
        }
        String lsn0 = (String) query("SELECT pg_current_wal_lsn()::text").get(0)[0];
        long server0 = db.serverCpuTicks();
        long client0 = processCpuNanos();
        long start = System.nanoTime();
        long end = start + length.toNanos();
        int samples = 0;
        int incomplete = 0;
        while (System.nanoTime() < end) {
            Thread.sleep(250);
            samples++;
            if (owners().size() < s.shards()) {
                incomplete++;
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        long server1 = db.serverCpuTicks();
        long client1 = processCpuNanos();
        long wal = ((Number) query("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '" + lsn0 + "')::bigint")
                        .get(0)[0])
                .longValue();
        Map<String, long[]> statements = statements();
        return new Window(
                seconds,
                statements,
                (server1 - server0) / BenchDatabase.TICKS_PER_SECOND / seconds,
                (client1 - client0) / 1e9 / seconds,
                wal / seconds,
                sum(true) - assigned0,
                sum(false) - revoked0,
                incomplete,
                samples);
    }

    private long sum(boolean assigned) {
        long total = 0;
        synchronized (members) {
            for (Member m : members) {
                total += assigned ? m.assigned.get() : m.revoked.get();
            }
        }
        return total;
    }

    private static long processCpuNanos() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getProcessCpuTime();
    }

    /** Top-level statements since the last reset, by kind: {calls, total execution µs, rows}. */
    private Map<String, long[]> statements() {
        Map<String, long[]> out = new TreeMap<>();
        if (!db.statementsAvailable()) {
            return out;
        }
        for (Object[] row : query("SELECT query, calls, (total_exec_time * 1000)::bigint, rows FROM "
                + "pg_stat_statements WHERE toplevel AND dbid = (SELECT oid FROM pg_database WHERE datname = "
                + "current_database())")) {
            String kind = kind((String) row[0]);
            if (kind == null) {
                continue;
            }
            out.merge(
                    kind,
                    new long[] {
                        ((Number) row[1]).longValue(), ((Number) row[2]).longValue(), ((Number) row[3]).longValue()
                    },
                    (a, b) -> new long[] {a[0] + b[0], a[1] + b[1], a[2] + b[2]});
        }
        return out;
    }

    /** The kind of a member's statement, or null for the harness's own. */
    private String kind(String query) {
        if (!query.contains(schema)) {
            return query.startsWith("LISTEN") || query.startsWith("SELECT $1") ? "LISTEN / health check" : null;
        }
        for (String fn : List.of(
                "group_renew",
                "group_state",
                "group_join",
                "group_leave",
                "renew_all",
                "acquire",
                "release",
                "fence")) {
            if (query.contains("." + fn + "(")) {
                return fn;
            }
        }
        if (query.contains(".leases WHERE name LIKE")) {
            return null; // the harness's reads of the owners
        }
        return "other: " + query.replaceAll("\\s+", " ").substring(0, Math.min(50, query.length()));
    }

    @Override
    public void close() {
        List<Member> all;
        synchronized (members) {
            all = new ArrayList<>(members);
            members.clear();
        }
        try {
            own.close();
        } catch (SQLException ignored) {
            // closing
        }
        all.parallelStream().forEach(m -> {
            try {
                m.pglease.close();
            } catch (RuntimeException ignored) {
                // best effort
            }
            m.pool.close();
        });
    }
}
