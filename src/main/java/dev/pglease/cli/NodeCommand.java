package dev.pglease.cli;

import dev.pglease.internal.tool.Databases;
import dev.pglease.internal.tool.DurationConverter;
import dev.pglease.internal.tool.JsonLines;
import com.zaxxer.hikari.HikariDataSource;
import dev.pglease.Elector;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.LeaseObserver;
import dev.pglease.Leadership;
import dev.pglease.PgLease;
import dev.pglease.Ticker;
import dev.pglease.internal.sql.FenceStatements;
import dev.pglease.internal.util.Secrets;
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
                "(open with --write-hold, acquire/renew with --trace)."})
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

    @Option(names = "--writers", defaultValue = "1",
            description = "Number of concurrent fenced-counter writer threads (default: ${DEFAULT-VALUE})")
    int writers;

    @Option(names = "--write-hold", defaultValue = "0ms", converter = DurationConverter.class,
            description = "Work done inside each fenced transaction before it commits, announced by an 'open' event "
                    + "(default: ${DEFAULT-VALUE})")
    Duration writeHold;

    @Option(names = "--ignore-deadline", hidden = true,
            description = "Fault injection (negative control): keep writing with the last grant after its local "
                    + "deadline, fenced only by the database")
    boolean ignoreDeadline;

    @Option(names = "--unfenced", hidden = true,
            description = "Fault injection (negative control): check the local deadline and the lease row "
                    + "without locking it, wait --write-hold, then write")
    boolean unfenced;

    @Option(names = "--campaign-delay", hidden = true, defaultValue = "0ms", converter = DurationConverter.class,
            description = "Fault injection (negative control): a standby campaigns only after the lease has been "
                    + "free or expired this long")
    Duration campaignDelay;

    @Option(names = "--suspend-file", hidden = true,
            description = "Fault injection: a file announcing a simulated system suspend as '<start epoch ms> "
                    + "<duration ms>'; the monotonic clock stops during it while the wall clock moves on")
    java.nio.file.Path suspendFile;

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
        if (writers < 1 || writers > 32) {
            throw new IllegalArgumentException("--writers must be between 1 and 32, got " + writers);
        }
        if (writeHold.isNegative() || campaignDelay.isNegative()) {
            throw new IllegalArgumentException("--write-hold and --campaign-delay must not be negative, got "
                    + writeHold + " and " + campaignDelay);
        }
        JsonLines out = new JsonLines(System.out, clockSkew.toMillis());
        Ticker ticker = suspendFile == null ? ticker(tickerRate) : new SuspendableTicker(ticker(tickerRate),
                suspendFile, tickerRate);
        LeaseConfig.Builder builder = LeaseConfig.builder().schema(schema).leaseDuration(leaseDuration)
                .renewDeadline(renewDeadline).retryPeriod(retryPeriod).ticker(ticker).fastFailover(fastFailover);
        if (holderLabel != null) {
            builder.holderLabel(holderLabel);
        }
        LeaseConfig probe = builder.build();
        String[] holder = new String[1];
        Deadlines deadlines = new Deadlines(ticker, renewDeadline, tickerRate);
        builder.observer(new TraceObserver(out, holder, renewDeadline, trace, deadlines));
        LeaseConfig config = builder.build();
        String poolName = "node" + (holderLabel == null ? "" : "-" + holderLabel);
        try (HikariDataSource ds = Databases.pool(jdbcUrl, (fastFailover ? 5 : 4) + writers, poolName)) {
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
                installSignalHandlers();
                if (!campaignDelay.isZero() && !awaitCampaignDelay(pglease, out)) {
                    return 0;
                }
                Elector elector = pglease.elector(lease, out.leaderListener(lease));
                java.util.List<Thread> workers = new java.util.ArrayList<>();
                if (work.equals("fenced-counter")) {
                    for (int i = 0; i < writers; i++) {
                        Thread worker = new Thread(() -> workLoop(out, pglease, elector, ds, deadlines),
                                "fenced-counter-" + i);
                        worker.setDaemon(true);
                        worker.start();
                        workers.add(worker);
                    }
                }
                stopped.await();
                stopping.set(true);
                // Release first: the standby's takeover waits for a fenced write still in flight anyway (the row
                // lock), and that write can no longer commit (the leadership already ended locally).
                elector.close();
                for (Thread worker : workers) {
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

    private void workLoop(JsonLines out, PgLease pglease, Elector elector, javax.sql.DataSource ds,
                          Deadlines deadlines) {
        Leadership last = null;
        while (!stopping.get()) {
            Optional<Leadership> current = elector.leadership();
            if (current.isPresent()) {
                last = current.get();
            }
            Leadership candidate = current.orElse(ignoreDeadline ? last : null);
            // the unfenced writer still honours its local deadline: only the fence is missing
            Leadership l = candidate != null && unfenced && !candidate.isValid() ? null : candidate;
            if (l != null) {
                Map<String, Object> e = out.event("write");
                long startTick = deadlines.tick();
                e.put("lease", lease);
                e.put("holder", l.holder());
                e.put("token", l.token());
                e.put("start", e.get("t"));
                FencedCounter counter = new FencedCounter(schema, lease, writeHold, () -> {
                    Map<String, Object> open = out.event("open");
                    open.put("lease", lease);
                    open.put("holder", l.holder());
                    open.put("token", l.token());
                    open.put("start", e.get("start"));
                    open.put("until", (long) open.get("t") + writeHold.toMillis());
                    out.emit(open);
                });
                // the deadline this process holds for the token, set by its last successful acquire or renew and
                // read from its own record: it is earlier than "start" when the write begins too late
                Long deadline = deadlines.wallDeadline(l.token(), (long) e.get("t"), startTick);
                if (deadline != null) {
                    e.put("deadline", deadline);
                }
                try {
                    long value;
                    if (ignoreDeadline || unfenced) {
                        value = counter.incrementWithoutDeadline(ds, l, unfenced);
                    } else {
                        value = pglease.inFencedTransaction(l, c -> counter.increment(c, l));
                    }
                    e.put("result", "accepted");
                    e.put("value", value);
                } catch (LeaseException ex) {
                    e.put("result", "rejected");
                    e.put("reason", ex.reason().name());
                } catch (SQLException | RuntimeException ex) {
                    e.put("result", "error");
                    e.put("reason", Secrets.redact(String.valueOf(ex.getMessage())));
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

    /**
     * Fault injection: waits until the lease has been free or expired (database clock) for {@code campaignDelay}.
     * Returns false if the node was stopped first.
     */
    private boolean awaitCampaignDelay(PgLease pglease, JsonLines out) throws InterruptedException {
        long freeSince = -1;
        while (stopped.getCount() > 0) {
            boolean free;
            try {
                free = pglease.leader(lease).isEmpty();
            } catch (LeaseException e) {
                free = false;
            }
            Map<String, Object> e = out.event("waiting");
            e.put("lease", lease);
            e.put("free", free);
            out.emit(e);
            long now = System.nanoTime();
            if (!free) {
                freeSince = -1;
            } else if (freeSince < 0) {
                freeSince = now;
            } else if (now - freeSince >= campaignDelay.toNanos()) {
                return true;
            }
            stopped.await(Math.min(retryPeriod.toMillis(), 100), TimeUnit.MILLISECONDS);
        }
        return false;
    }

    /**
     * This process's own record of its local deadline per token: the ticker reading before the last successful
     * acquire or renew statement was sent, plus the renew deadline. Kept apart from the library's state so that the
     * reported deadline is evidence of its own, not derived from {@link Leadership#remaining()}.
     */
    static final class Deadlines {
        private final Ticker ticker;
        private final long renewDeadlineNanos;
        private final double rate;
        private final Map<Long, Long> byToken = new java.util.concurrent.ConcurrentHashMap<>();

        Deadlines(Ticker ticker, Duration renewDeadline, double rate) {
            this.ticker = ticker;
            this.renewDeadlineNanos = renewDeadline.toNanos();
            this.rate = rate;
        }

        /** The node's monotonic ticker reading (never a clock compared with the database's). */
        long tick() {
            return ticker.read();
        }

        void answered(long token, Duration latency) {
            long sent = ticker.read() - latency.toNanos();
            byToken.merge(token, sent + renewDeadlineNanos, (a, b) -> b - a > 0 ? b : a);
        }

        /** The deadline for {@code token} as a wall-clock time, given the wall time and ticker reading of now. */
        Long wallDeadline(long token, long wallNow, long tickNow) {
            Long d = byToken.get(token);
            if (d == null) {
                return null;
            }
            return wallNow + Math.floorDiv((long) ((d - tickNow) / rate), 1_000_000L);
        }
    }

    private static Ticker ticker(double rate) {
        if (rate == 1.0) {
            return Ticker.SYSTEM;
        }
        long origin = System.nanoTime();
        return () -> origin + (long) ((System.nanoTime() - origin) * rate);
    }

    /**
     * Fault injection: a monotonic clock that does not advance during an announced suspend, as CLOCK_MONOTONIC does
     * not while a machine sleeps. The kit announces the suspend in the file before it stops the process, so the
     * clock already knows it when the process runs again.
     */
    static final class SuspendableTicker implements Ticker {
        private final Ticker base;
        private final double rate;
        /** Suspend time of earlier suspends, start of the latest, its duration: replaced as one. */
        private volatile long[] state = {0, Long.MAX_VALUE, 0};
        /** The highest reading handed out: a suspend noticed late stops the clock, never turns it back. */
        private final java.util.concurrent.atomic.AtomicLong highest = new java.util.concurrent.atomic.AtomicLong(Long.MIN_VALUE);

        SuspendableTicker(Ticker base, java.nio.file.Path file, double rate) {
            this.base = base;
            this.rate = rate;
            Thread watcher = new Thread(() -> watch(file), "suspend-file-watcher");
            watcher.setDaemon(true);
            watcher.start();
        }

        private void watch(java.nio.file.Path file) {
            while (true) {
                try {
                    if (java.nio.file.Files.exists(file)) {
                        String[] f = java.nio.file.Files.readString(file).trim().split("\\s+");
                        long[] old = state;
                        if (f.length == 2 && Long.parseLong(f[0]) != old[1]) {
                            long earlier = old[0] + (old[1] == Long.MAX_VALUE ? 0 : old[2]);
                            state = new long[] {earlier, Long.parseLong(f[0]), Long.parseLong(f[1])};
                        }
                    }
                    TimeUnit.MILLISECONDS.sleep(10);
                } catch (java.io.IOException | NumberFormatException e) {
                    // a half-written file: read it again
                } catch (InterruptedException e) {
                    return;
                }
            }
        }

        @Override
        public long read() {
            long raw = base.read();
            long[] st = state;
            long now = System.currentTimeMillis();
            long frozenMillis = st[0] + (now <= st[1] ? 0 : Math.min(now - st[1], st[2]));
            return highest.accumulateAndGet(raw - (long) (frozenMillis * 1_000_000L * rate), Math::max);
        }
    }

    /** Reports every acquire and renew statement for the history checker. */
    private static final class TraceObserver implements LeaseObserver {
        private final JsonLines out;
        private final String[] holder;
        private final long renewDeadlineMillis;
        private final boolean trace;
        private final Deadlines deadlines;

        TraceObserver(JsonLines out, String[] holder, Duration renewDeadline, boolean trace, Deadlines deadlines) {
            this.out = out;
            this.holder = holder;
            this.renewDeadlineMillis = renewDeadline.toMillis();
            this.trace = trace;
            this.deadlines = deadlines;
        }

        private void emit(String event, String lease, String result, long token, Duration latency) {
            if (!trace) {
                return;
            }
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
            if (granted) {
                deadlines.answered(token, latency);
            }
            emit("acquire", leaseName, granted ? "granted" : "denied", token, latency);
        }

        @Override
        public void renewed(String leaseName, long token, Duration latency) {
            deadlines.answered(token, latency);
            emit("renew", leaseName, "ok", token, latency);
        }

        @Override
        public void renewFailed(String leaseName, long token, boolean lost, Throwable cause) {
            emit("renew", leaseName, lost ? "lost" : "error", token, null);
        }

        @Override
        public void databaseError(String leaseName, Throwable cause) {
            if (!trace) {
                return;
            }
            Map<String, Object> e = out.event("database-error");
            e.put("lease", leaseName);
            e.put("holder", holder[0]);
            e.put("reason", Secrets.redact(String.valueOf(cause.getMessage())));
            out.emit(e);
        }
    }

    /** The protected resource of the node command: a counter row and its accept log, written in one transaction. */
    static final class FencedCounter {
        private final String schema;
        private final String name;
        private final Duration hold;
        /** Told when the transaction is open and the held work begins (only with a hold). */
        private final Runnable opened;

        FencedCounter(String schema, String name, Duration hold, Runnable opened) {
            this.schema = schema;
            this.name = name;
            this.hold = hold;
            this.opened = opened;
        }

        /**
         * Fault injection: the write without the library's local deadline check, in one transaction that checks the
         * lease row on the database (locked FOR SHARE, which blocks every change of the row until commit, or with
         * {@code unlocked} a plain read taken before the held work).
         */
        long incrementWithoutDeadline(javax.sql.DataSource ds, Leadership l, boolean unlocked) throws SQLException {
            try (Connection c = ds.getConnection()) {
                c.setAutoCommit(false);
                try {
                    if (!new FenceStatements(schema).leaseRowHeld(c, name, l.holder(), l.token(), !unlocked)) {
                        throw new LeaseException(LeaseException.Reason.STALE_TOKEN, "token " + l.token()
                                + " is not the valid grant of " + name + " on the database");
                    }
                    long value = increment(c, l);
                    c.commit();
                    return value;
                } catch (SQLException | RuntimeException e) {
                    c.rollback();
                    throw e;
                }
            }
        }

        private void sleep() {
            if (!hold.isZero()) {
                opened.run();
                try {
                    TimeUnit.NANOSECONDS.sleep(hold.toNanos());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
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
            sleep();
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
            log(c, l, value);
            return value;
        }

        private void log(Connection c, Leadership l, long value) throws SQLException {
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + schema
                    + ".fenced_counter_log (name, token, holder, value) VALUES (?, ?, ?, ?)")) {
                ps.setString(1, name);
                ps.setLong(2, l.token());
                ps.setString(3, l.holder());
                ps.setLong(4, value);
                ps.executeUpdate();
            }
        }
    }
}
