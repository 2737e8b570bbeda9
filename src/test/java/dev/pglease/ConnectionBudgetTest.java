package dev.pglease;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.bench.Stats;
import dev.pglease.internal.store.StartupChecks;
import dev.pglease.internal.tool.EmbeddedPostgresServer;
import dev.pglease.pgbouncer.PgBouncer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Supplier;
import javax.sql.DataSource;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.postgresql.ds.PGSimpleDataSource;

/**
 * The connection budget behind PgBouncer, measured: 200 candidates (200 {@link PgLease} instances, each what one
 * candidate process opens) campaign for one lease with the default timings (10 s / 6 s / 2 s), first directly,
 * then through PgBouncer in {@code pool_mode=transaction} (pool size 20) polling, then through it with a direct
 * data source for LISTEN. PostgreSQL's {@code pg_stat_activity} is sampled every 100 ms; then the leader hands over
 * five times (graceful close) and the time until another candidate leads is the notification latency.
 *
 * <p>Run: {@code ./mvnw -Ppgbouncer-budget test}; writes {@code target/pgbouncer-budget.md}.
 */
@Tag("pgbouncer-budget")
class ConnectionBudgetTest {

    static final int CANDIDATES = 200;
    static final int POOL_SIZE = 20;
    static final int HANDOFFS = 5;
    static final Duration SAMPLING = Duration.ofSeconds(10);
    /** Handovers between two candidates per notification mode: the latency without 200 candidates racing. */
    static final int PAIR_HANDOFFS = 20;

    @Test
    void twoHundredCandidatesDirectlyAndThroughPgBouncer() throws Exception {
        assertThat(PgBouncer.installed())
                .as(PgBouncer.BINARY + " (Debian package pgbouncer)")
                .isTrue();
        String loadBefore = load();
        List<String> rows = new ArrayList<>();
        List<String> pairRows = new ArrayList<>();
        try (EmbeddedPostgresServer server = EmbeddedPostgresServer.start(Map.of("max_connections", "700"));
                PgBouncer bouncer = PgBouncer.start(server.port(), "postgres", "transaction", POOL_SIZE)) {
            String schema = "budget";
            PgLease.migrate(server.dataSource(), schema);
            Supplier<DataSource> direct = () -> dataSource(server.jdbcUrl() + "&ApplicationName=direct");
            Supplier<DataSource> pooled = () -> dataSource(bouncer.jdbcUrl("postgres") + "&ApplicationName=pooled");
            DataSource sampler = dataSource(server.jdbcUrl() + "&ApplicationName=sampler");

            rows.add(run(
                    "direct (LISTEN on the same data source)",
                    direct,
                    null,
                    schema,
                    sampler,
                    StartupChecks.NotificationMode.LISTEN));
            rows.add(run(
                    "PgBouncer transaction pooling, polling",
                    pooled,
                    null,
                    schema,
                    sampler,
                    StartupChecks.NotificationMode.POLLING));
            rows.add(run(
                    "PgBouncer transaction pooling + directDataSource for LISTEN",
                    pooled,
                    direct,
                    schema,
                    sampler,
                    StartupChecks.NotificationMode.LISTEN_DIRECT));
            pairRows.add(pair("direct (LISTEN)", direct, null, schema));
            pairRows.add(pair("PgBouncer transaction pooling, polling", pooled, null, schema));
            pairRows.add(pair("PgBouncer transaction pooling + directDataSource for LISTEN", pooled, direct, schema));
        }
        StringBuilder md = new StringBuilder();
        md.append("Command: `./mvnw -Ppgbouncer-budget test`. ")
                .append(CANDIDATES)
                .append(" candidates, one lease, timings 10 s / 6 s / 2 s, PgBouncer ")
                .append("pool_mode=transaction default_pool_size=")
                .append(POOL_SIZE)
                .append(".\n")
                .append("Machine: ")
                .append(Runtime.getRuntime().availableProcessors())
                .append(" CPUs; load average ")
                .append(loadBefore)
                .append(" at start, ")
                .append(load())
                .append(" at end (1/5/15 min).\n\n")
                .append(
                        "| setup | server connections, peak (pooled + direct) | per candidate | handover to a standby, ms "
                                + "(n, p50, max) |\n|---|---|---|---|\n");
        rows.forEach(r -> md.append(r).append('\n'));
        md.append("\nTwo candidates, ")
                .append(PAIR_HANDOFFS)
                .append(
                        " graceful handovers each (leader closes; time until "
                                + "the standby leads), same timings:\n\n| setup | handover, ms (n, p50, p90, max) |\n|---|---|\n");
        pairRows.forEach(r -> md.append(r).append('\n'));
        Path out = Path.of(System.getProperty("pglease.buildDirectory", "target"), "pgbouncer-budget.md");
        Files.createDirectories(out.getParent());
        Files.writeString(out, md);
        System.out.println(md);
    }

    private static String run(
            String setup,
            Supplier<DataSource> main,
            Supplier<DataSource> listen,
            String schema,
            DataSource sampler,
            StartupChecks.NotificationMode expected)
            throws Exception {
        String lease = "budget-" + System.nanoTime();
        List<PgLease> candidates = new ArrayList<>();
        List<Elector> electors = new ArrayList<>();
        ExecutorService pool = Executors.newFixedThreadPool(16);
        try {
            List<Future<PgLease>> starting = new ArrayList<>();
            for (int i = 0; i < CANDIDATES; i++) {
                LeaseConfig.Builder config =
                        LeaseConfig.builder().schema(schema).holderLabel("c" + i);
                if (listen != null) {
                    config.directDataSource(listen.get());
                }
                starting.add(pool.submit(() -> PgLease.create(main.get(), config.build())));
            }
            for (Future<PgLease> f : starting) {
                candidates.add(f.get());
            }
            assertThat(candidates)
                    .allSatisfy(c -> assertThat(c.notificationMode()).isEqualTo(expected));
            for (PgLease c : candidates) {
                electors.add(c.elector(lease, new PgBouncerTest.LeaseListener()));
            }
            awaitLeader(electors, Duration.ofSeconds(30));
            Thread.sleep(3000); // every standby has been denied at least once and settled into its sleep

            int peakPooled = 0;
            int peakDirect = 0;
            int peakTotal = 0;
            long end = System.nanoTime() + SAMPLING.toNanos();
            while (System.nanoTime() < end) {
                int[] counts = serverConnections(sampler);
                peakPooled = Math.max(peakPooled, counts[0]);
                peakDirect = Math.max(peakDirect, counts[1]);
                peakTotal = Math.max(peakTotal, counts[0] + counts[1]);
                Thread.sleep(100);
            }

            List<Double> handoffs = new ArrayList<>();
            for (int h = 0; h < HANDOFFS; h++) {
                int leader = awaitLeader(electors, Duration.ofSeconds(30));
                Elector old = electors.get(leader);
                long released = System.nanoTime();
                old.close();
                electors.set(leader, null);
                awaitLeader(electors, Duration.ofSeconds(30));
                handoffs.add((System.nanoTime() - released) / 1e6);
                Thread.sleep(500);
            }
            Stats s = Stats.of(handoffs);
            return String.format(
                    Locale.ROOT,
                    "| %s | %d (%d + %d) | %.2f | %d, %s, %s |",
                    setup,
                    peakTotal,
                    peakPooled,
                    peakDirect,
                    peakTotal / (double) CANDIDATES,
                    s.n(),
                    Stats.f(s.p50()),
                    Stats.f(s.max()));
        } finally {
            List<Future<?>> closing = new ArrayList<>();
            for (PgLease c : candidates) {
                closing.add(pool.submit(c::close));
            }
            for (Future<?> f : closing) {
                f.get();
            }
            pool.shutdown();
        }
    }

    private static String pair(String setup, Supplier<DataSource> main, Supplier<DataSource> listen, String schema)
            throws Exception {
        String lease = "pair-" + System.nanoTime();
        List<Double> handoffs = new ArrayList<>();
        PgLease[] candidates = new PgLease[2];
        Elector[] electors = new Elector[2];
        try {
            for (int i = 0; i < 2; i++) {
                LeaseConfig.Builder config =
                        LeaseConfig.builder().schema(schema).holderLabel("p" + i);
                if (listen != null) {
                    config.directDataSource(listen.get());
                }
                candidates[i] = PgLease.create(main.get(), config.build());
                electors[i] = candidates[i].elector(lease, new PgBouncerTest.LeaseListener());
            }
            for (int h = 0; h < PAIR_HANDOFFS; h++) {
                int leader = awaitLeader(java.util.Arrays.asList(electors), Duration.ofSeconds(30));
                Thread.sleep(300); // the standby has been denied and sleeps
                long released = System.nanoTime();
                electors[leader].close();
                awaitLeader(java.util.Arrays.asList(electors), Duration.ofSeconds(30));
                handoffs.add((System.nanoTime() - released) / 1e6);
                electors[leader] = rejoin(candidates[leader], lease);
            }
        } finally {
            for (PgLease c : candidates) {
                if (c != null) {
                    c.close();
                }
            }
        }
        Stats s = Stats.of(handoffs);
        return String.format(
                Locale.ROOT,
                "| %s | %d, %s, %s, %s |",
                setup,
                s.n(),
                Stats.f(s.p50()),
                Stats.f(s.p90()),
                Stats.f(s.max()));
    }

    /** A new elector once the closed one has left (leaving finishes after its release). */
    private static Elector rejoin(PgLease candidate, String lease) throws InterruptedException {
        long end = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (true) {
            try {
                return candidate.elector(lease, new PgBouncerTest.LeaseListener());
            } catch (IllegalStateException stillLeaving) {
                if (System.nanoTime() > end) {
                    throw stillLeaving;
                }
                Thread.sleep(10);
            }
        }
    }

    /** Index of the elector that leads, waiting for one. */
    private static int awaitLeader(List<Elector> electors, Duration timeout) throws InterruptedException {
        long end = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < end) {
            for (int i = 0; i < electors.size(); i++) {
                Elector e = electors.get(i);
                if (e != null && e.isLeader()) {
                    return i;
                }
            }
            Thread.sleep(2);
        }
        throw new AssertionError("no leader within " + timeout);
    }

    /** Client backends on the server, as {pooled (opened by PgBouncer), direct}; the sampler itself excluded. */
    private static int[] serverConnections(DataSource sampler) throws SQLException {
        try (Connection c = sampler.getConnection();
                PreparedStatement ps =
                        c.prepareStatement("SELECT count(*) FILTER (WHERE application_name <> 'direct'), "
                                + "count(*) FILTER (WHERE application_name = 'direct') FROM pg_stat_activity "
                                + "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()");
                ResultSet rs = ps.executeQuery()) {
            rs.next();
            return new int[] {rs.getInt(1), rs.getInt(2)};
        }
    }

    private static DataSource dataSource(String url) {
        PGSimpleDataSource ds = new PGSimpleDataSource();
        ds.setURL(url);
        ds.setConnectTimeout(10);
        ds.setLoginTimeout(10);
        return ds;
    }

    private static String load() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split(" ");
            return f[0] + " / " + f[1] + " / " + f[2];
        } catch (IOException e) {
            return "unknown";
        }
    }
}
