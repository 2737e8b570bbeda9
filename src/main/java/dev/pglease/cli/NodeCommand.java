package dev.pglease.cli;

import com.zaxxer.hikari.HikariDataSource;
import dev.pglease.Elector;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.LeaseObserver;
import dev.pglease.Leadership;
import dev.pglease.PgLease;
import dev.pglease.Ticker;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * One candidate that runs until stopped and reports every event as a JSON line on stdout. The building block of the
 * demo and of the fault tests; its output format is a stable contract (see README, "The node command").
 */
@Command(name = "node", mixinStandardHelpOptions = true,
        description = {"Run one candidate for a lease until stopped (SIGTERM releases the lease and exits 0).",
                "Writes one JSON object per line to stdout: started, elected, revoked, released, write",
                "(and acquire/renew with --trace)."})
public final class NodeCommand implements java.util.concurrent.Callable<Integer> {

    @Option(names = "--jdbc-url", description = "PostgreSQL JDBC URL (default: $PGLEASE_JDBC_URL)",
            defaultValue = "${env:PGLEASE_JDBC_URL}")
    String jdbcUrl;

    @Option(names = "--lease", required = true, description = "Lease name to campaign for")
    String lease;

    @Option(names = "--schema", defaultValue = "pglease", description = "pglease schema (default: ${DEFAULT-VALUE})")
    String schema;

    @Option(names = "--lease-duration", defaultValue = "10s", converter = DurationConverter.class,
            description = "Lease duration (default: ${DEFAULT-VALUE})")
    Duration leaseDuration;

    @Option(names = "--renew-deadline", defaultValue = "6s", converter = DurationConverter.class,
            description = "Renew deadline (default: ${DEFAULT-VALUE})")
    Duration renewDeadline;

    @Option(names = "--retry-period", defaultValue = "2s", converter = DurationConverter.class,
            description = "Retry period (default: ${DEFAULT-VALUE})")
    Duration retryPeriod;

    @Option(names = "--work", defaultValue = "none",
            description = "Work the leader does: fenced-counter or none (default: ${DEFAULT-VALUE})")
    String work;

    @Option(names = "--work-interval", defaultValue = "50ms", converter = DurationConverter.class,
            description = "Pause between two writes of the fenced counter (default: ${DEFAULT-VALUE})")
    Duration workInterval;

    @Option(names = "--holder-label", description = "Start of the holder id (default: host name)")
    String holderLabel;

    @Option(names = "--migrate", description = "Migrate the schema before campaigning")
    boolean migrate;

    @Option(names = "--fast-failover", description = "Take over at once when the leader's database session ends "
            + "(crash, kill -9, connection lost) instead of waiting for its lease to expire")
    boolean fastFailover;

    @Option(names = "--trace", description = "Also report every acquire and renew statement")
    boolean trace;

    @Option(names = "--ticker-rate", defaultValue = "1.0",
            description = "Fault injection: run the monotonic clock this many times faster (default: ${DEFAULT-VALUE})")
    double tickerRate;

    @Option(names = "--clock-skew", defaultValue = "0ms", converter = DurationConverter.class,
            description = "Fault injection: shift the reported wall-clock times (pglease never reads the wall clock)")
    Duration clockSkew;

    private final CountDownLatch stopped = new CountDownLatch(1);
    private final AtomicBoolean stopping = new AtomicBoolean();

    @Override
    public Integer call() throws Exception {
        if (!work.equals("none") && !work.equals("fenced-counter")) {
            throw new IllegalArgumentException("--work must be fenced-counter or none, got '" + work + "'");
        }
        if (!(tickerRate > 0) || Double.isInfinite(tickerRate)) {
            throw new IllegalArgumentException("--ticker-rate must be a positive number, got " + tickerRate);
        }
        JsonLines out = new JsonLines(System.out, clockSkew.toMillis());
        LeaseConfig.Builder builder = LeaseConfig.builder().schema(schema).leaseDuration(leaseDuration)
                .renewDeadline(renewDeadline).retryPeriod(retryPeriod).ticker(ticker(tickerRate))
                .fastFailover(fastFailover);
        if (holderLabel != null) {
            builder.holderLabel(holderLabel);
        }
        LeaseConfig probe = builder.build();
        String[] holder = new String[1];
        if (trace) {
            builder.observer(new TraceObserver(out, holder, renewDeadline));
        }
        LeaseConfig config = builder.build();
        try (HikariDataSource ds = Databases.pool(jdbcUrl, fastFailover ? 5 : 4, "node")) {
            if (migrate) {
                PgLease.migrate(ds, probe.schema());
            }
            try (PgLease pglease = PgLease.create(ds, config)) {
                holder[0] = pglease.holderId();
                if (work.equals("fenced-counter")) {
                    FencedCounter.createTables(ds, schema);
                }
                Map<String, Object> started = out.event("started");
                started.put("lease", lease);
                started.put("holder", pglease.holderId());
                started.put("pid", ProcessHandle.current().pid());
                out.emit(started);
                Elector elector = pglease.elector(lease, out.leaderListener(lease));
                Thread worker = null;
                if (work.equals("fenced-counter")) {
                    worker = new Thread(() -> workLoop(out, pglease, elector), "fenced-counter");
                    worker.setDaemon(true);
                    worker.start();
                }
                installSignalHandlers();
                stopped.await();
                stopping.set(true);
                // Release first: the standby's takeover waits for a fenced write still in flight anyway (the row
                // lock), and that write can no longer commit (the leadership already ended locally).
                elector.close();
                if (worker != null) {
                    worker.join(1_000);
                }
            }
        }
        System.out.flush();
        return 0;
    }

    private void installSignalHandlers() {
        Runnable stop = stopped::countDown;
        try {
            sun.misc.Signal.handle(new sun.misc.Signal("TERM"), s -> stop.run());
            sun.misc.Signal.handle(new sun.misc.Signal("INT"), s -> stop.run());
        } catch (IllegalArgumentException | UnsupportedOperationException e) {
            Runtime.getRuntime().addShutdownHook(new Thread(stop));
        }
    }

    private void workLoop(JsonLines out, PgLease pglease, Elector elector) {
        FencedCounter counter = new FencedCounter(schema, lease);
        while (!stopping.get()) {
            Optional<Leadership> current = elector.leadership();
            if (current.isPresent()) {
                Leadership l = current.get();
                Map<String, Object> e = out.event("write");
                e.put("lease", lease);
                e.put("holder", l.holder());
                e.put("token", l.token());
                e.put("start", e.get("t"));
                e.put("deadline", out.wallMillis() + l.remaining().toMillis());
                try {
                    long value = pglease.inFencedTransaction(l, c -> counter.increment(c, l));
                    e.put("result", "accepted");
                    e.put("value", value);
                } catch (LeaseException ex) {
                    e.put("result", "rejected");
                    e.put("reason", ex.reason().name());
                } catch (SQLException | RuntimeException ex) {
                    e.put("result", "error");
                    e.put("reason", dev.pglease.Secrets.redact(String.valueOf(ex.getMessage())));
                }
                e.put("t", out.wallMillis());
                out.emit(e);
            }
            try {
                TimeUnit.NANOSECONDS.sleep(workInterval.toNanos());
            } catch (InterruptedException ex) {
                return;
            }
        }
    }

    private static Ticker ticker(double rate) {
        if (rate == 1.0) {
            return Ticker.SYSTEM;
        }
        long origin = System.nanoTime();
        return () -> origin + (long) ((System.nanoTime() - origin) * rate);
    }

    /** Reports every acquire and renew statement for the history checker. */
    private static final class TraceObserver implements LeaseObserver {
        private final JsonLines out;
        private final String[] holder;
        private final long renewDeadlineMillis;

        TraceObserver(JsonLines out, String[] holder, Duration renewDeadline) {
            this.out = out;
            this.holder = holder;
            this.renewDeadlineMillis = renewDeadline.toMillis();
        }

        private void emit(String event, String lease, String result, long token, Duration latency) {
            Map<String, Object> e = out.event(event);
            long t = (long) e.get("t");
            e.put("lease", lease);
            e.put("holder", holder[0]);
            e.put("result", result);
            e.put("token", token);
            if (latency != null) {
                long sent = t - latency.toMillis();
                e.put("sent", sent);
                e.put("deadline", sent + renewDeadlineMillis);
            }
            out.emit(e);
        }

        @Override
        public void acquireAttempted(String leaseName, boolean granted, long token, Duration latency) {
            emit("acquire", leaseName, granted ? "granted" : "denied", token, latency);
        }

        @Override
        public void renewed(String leaseName, long token, Duration latency) {
            emit("renew", leaseName, "ok", token, latency);
        }

        @Override
        public void renewFailed(String leaseName, long token, boolean lost, Throwable cause) {
            emit("renew", leaseName, lost ? "lost" : "error", token, null);
        }

        @Override
        public void databaseError(String leaseName, Throwable cause) {
            Map<String, Object> e = out.event("database-error");
            e.put("lease", leaseName);
            e.put("holder", holder[0]);
            e.put("reason", dev.pglease.Secrets.redact(String.valueOf(cause.getMessage())));
            out.emit(e);
        }
    }

    /** The protected resource of the node command: a counter row and its accept log, written in one transaction. */
    static final class FencedCounter {
        private final String schema;
        private final String name;

        FencedCounter(String schema, String name) {
            this.schema = schema;
            this.name = name;
        }

        static void createTables(javax.sql.DataSource ds, String schema) throws SQLException {
            try (Connection c = ds.getConnection()) {
                c.setAutoCommit(false);
                try (Statement s = c.createStatement()) {
                    s.execute("SELECT pg_advisory_xact_lock(7291001)");
                    s.execute("CREATE TABLE IF NOT EXISTS " + schema + ".fenced_counter ("
                            + "name text PRIMARY KEY, value bigint NOT NULL, token bigint NOT NULL)");
                    s.execute("CREATE TABLE IF NOT EXISTS " + schema + ".fenced_counter_log ("
                            + "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, "
                            + "token bigint NOT NULL, holder text NOT NULL, value bigint NOT NULL, "
                            + "at timestamptz NOT NULL DEFAULT clock_timestamp())");
                }
                c.commit();
            }
        }

        long increment(Connection c, Leadership l) throws SQLException {
            long value;
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + schema + ".fenced_counter AS f "
                    + "(name, value, token) VALUES (?, 1, ?) ON CONFLICT (name) DO UPDATE "
                    + "SET value = f.value + 1, token = excluded.token RETURNING value")) {
                ps.setString(1, name);
                ps.setLong(2, l.token());
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    value = rs.getLong(1);
                }
            }
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + schema
                    + ".fenced_counter_log (name, token, holder, value) VALUES (?, ?, ?, ?)")) {
                ps.setString(1, name);
                ps.setLong(2, l.token());
                ps.setString(3, l.holder());
                ps.setLong(4, value);
                ps.executeUpdate();
            }
            return value;
        }
    }
}
