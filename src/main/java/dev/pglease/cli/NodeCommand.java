package dev.pglease.cli;

import com.zaxxer.hikari.HikariDataSource;
import dev.pglease.Elector;
import dev.pglease.GroupConfig;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.PgLease;
import dev.pglease.Ticker;
import dev.pglease.internal.tool.Databases;
import dev.pglease.internal.tool.DurationConverter;
import dev.pglease.internal.tool.JsonLines;
import dev.pglease.internal.util.Names;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import javax.sql.DataSource;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * One candidate that runs until stopped and reports every event as a JSON line on stdout. The building block of the
 * demo and of the fault tests; its output format is a stable contract (see README, "The node command").
 */
@Command(
        name = "node",
        mixinStandardHelpOptions = true,
        defaultValueProvider = TimingDefaults.class,
        description = {
            "Run one candidate for a lease until stopped (SIGTERM releases the lease and exits 0),",
            "or with --group NAME --shards N one member of a lease group (SIGTERM hands every shard over).",
            "Writes one JSON object per line to stdout: started, elected, revoked, released, write",
            "(open with --write-hold, acquire/renew with --trace; setup with --setup-workload)."
        })
public final class NodeCommand implements java.util.concurrent.Callable<Integer> {

    @Option(
            names = "--jdbc-url",
            description = "PostgreSQL JDBC URL (default: $PGLEASE_JDBC_URL)",
            defaultValue = "${env:PGLEASE_JDBC_URL}")
    String jdbcUrl;

    @Option(names = "--lease", description = "Lease name to campaign for (or --group)")
    String lease;

    @Option(
            names = "--group",
            description = "Lease group to be a member of (with --shards): one shard lease per shard, see GroupNode")
    String group;

    @Option(names = "--shards", description = "Number of shards of the --group (the same for every member)")
    Integer shards;

    @Option(names = "--weight", defaultValue = "1", description = "Group member's weight (default: ${DEFAULT-VALUE})")
    int weight;

    @Option(
            names = "--priority",
            defaultValue = "0",
            description = "Group member's priority: higher gets the leftover shards first (default: ${DEFAULT-VALUE})")
    int priority;

    @Option(names = "--schema", defaultValue = "pglease", description = "pglease schema (default: ${DEFAULT-VALUE})")
    String schema;

    @Option(
            names = "--lease-duration",
            converter = DurationConverter.class,
            description = "Lease duration (default: ${DEFAULT-VALUE})")
    Duration leaseDuration;

    @Option(
            names = "--renew-deadline",
            converter = DurationConverter.class,
            description = "Renew deadline (default: ${DEFAULT-VALUE})")
    Duration renewDeadline;

    @Option(
            names = "--retry-period",
            converter = DurationConverter.class,
            description = "Retry period (default: ${DEFAULT-VALUE})")
    Duration retryPeriod;

    @Option(
            names = "--work",
            defaultValue = "none",
            description = "Work the leader does: fenced-counter or none (default: ${DEFAULT-VALUE})")
    String work;

    @Option(
            names = "--work-interval",
            defaultValue = "50ms",
            converter = DurationConverter.class,
            description = "Pause between two writes of the fenced counter (default: ${DEFAULT-VALUE})")
    Duration workInterval;

    @Option(names = "--holder-label", description = "Start of the holder id (default: host name)")
    String holderLabel;

    @Option(names = "--migrate", description = "Migrate the schema before campaigning (as the schema's owner)")
    boolean migrate;

    @Option(
            names = "--work-schema",
            paramLabel = "SCHEMA",
            description = "Schema of the fenced-counter tables (default: the pglease schema)")
    String workSchema;

    @Option(
            names = "--setup-workload",
            description = "As the tables' owner: create the fenced-counter tables, grant the candidate role "
                    + "what the writes need, protect them with the lease (outside the pglease schema), report a "
                    + "'setup' event and exit, so that nodes need only a candidate login")
    boolean setupWorkload;

    @Option(
            names = "--candidate-role",
            paramLabel = "ROLE",
            description = "With --setup-workload: the role granted the writes (default: <schema>_candidate)")
    String candidateRole;

    @Option(
            names = "--fast-failover",
            description = "Take over at once when the leader's database session ends "
                    + "(crash, kill -9, connection lost) instead of waiting for its lease to expire")
    boolean fastFailover;

    @Option(names = "--trace", description = "Also report every acquire and renew statement")
    boolean trace;

    @Option(
            names = "--ticker-rate",
            defaultValue = "1.0",
            description = "Fault injection: run the monotonic clock this many times faster (default: ${DEFAULT-VALUE})")
    double tickerRate;

    @Option(
            names = "--clock-skew",
            defaultValue = "0ms",
            converter = DurationConverter.class,
            description = "Fault injection: shift the reported wall-clock times (pglease never reads the wall clock)")
    Duration clockSkew;

    @Option(
            names = "--writers",
            defaultValue = "1",
            description = "Number of concurrent fenced-counter writer threads (default: ${DEFAULT-VALUE})")
    int writers;

    @Option(
            names = "--write-hold",
            defaultValue = "0ms",
            converter = DurationConverter.class,
            description = "Work done inside each fenced transaction before it commits, announced by an 'open' event "
                    + "(default: ${DEFAULT-VALUE})")
    Duration writeHold;

    @Option(
            names = "--ignore-deadline",
            hidden = true,
            description = "Fault injection (negative control): keep writing with the last grant after its local "
                    + "deadline, fenced only by the database (with --group: also each shard's grant after it was "
                    + "revoked or handed over)")
    boolean ignoreDeadline;

    @Option(
            names = "--unfenced",
            hidden = true,
            description = "Fault injection (negative control): check the local deadline and the lease row "
                    + "without locking it, wait --write-hold, then write")
    boolean unfenced;

    @Option(
            names = "--campaign-delay",
            hidden = true,
            defaultValue = "0ms",
            converter = DurationConverter.class,
            description = "Fault injection (negative control): a standby campaigns only after the lease has been "
                    + "free or expired this long")
    Duration campaignDelay;

    @Option(
            names = "--suspend-file",
            hidden = true,
            description = "Fault injection: a file announcing a simulated system suspend as '<start, System.nanoTime() "
                    + "of any JVM on this machine> <duration ms>'; the monotonic clock stops during it while the wall "
                    + "clock moves on")
    java.nio.file.Path suspendFile;

    private final CountDownLatch stopped = new CountDownLatch(1);
    private final AtomicBoolean stopping = new AtomicBoolean();

    @Override
    public Integer call() throws Exception {
        GroupConfig member = GroupMode.check(this);
        if (!work.equals("none") && !work.equals("fenced-counter")) {
            throw new IllegalArgumentException("--work must be fenced-counter or none, got '" + work + "'");
        }
        if (!(tickerRate > 0) || Double.isInfinite(tickerRate)) {
            throw new IllegalArgumentException("--ticker-rate must be a positive number, got " + tickerRate);
        }
        if (writers < 1 || writers > 32) {
            throw new IllegalArgumentException("--writers must be between 1 and 32, got " + writers);
        }
        if (setupWorkload && !work.equals("fenced-counter")) {
            throw new IllegalArgumentException("--setup-workload sets up the tables of --work fenced-counter: add it");
        }
        String tables = Names.schema(workSchema == null ? schema : workSchema);
        if (writeHold.isNegative() || campaignDelay.isNegative()) {
            throw new IllegalArgumentException("--write-hold and --campaign-delay must not be negative, got "
                    + writeHold + " and " + campaignDelay);
        }
        JsonLines out = new JsonLines(System.out, clockSkew.toMillis());
        Ticker ticker = suspendFile == null
                ? ticker(tickerRate)
                : new SuspendableTicker(ticker(tickerRate), suspendFile, tickerRate);
        LeaseConfig.Builder builder = LeaseConfig.builder()
                .schema(schema)
                .leaseDuration(leaseDuration)
                .renewDeadline(renewDeadline)
                .retryPeriod(retryPeriod)
                .ticker(ticker)
                .fastFailover(fastFailover);
        if (holderLabel != null) {
            builder.holderLabel(holderLabel);
        }
        LeaseConfig probe = builder.build();
        String[] holder = new String[1];
        Deadlines deadlines = new Deadlines(ticker, renewDeadline, tickerRate);
        builder.observer(new TraceObserver(out, holder, renewDeadline, trace, deadlines));
        LeaseConfig config = builder.build();
        String poolName = "node" + (holderLabel == null ? "" : "-" + holderLabel);
        // fast failover adds the wait on its own lease session and, for a group member, the wait on the next member
        int connections = (fastFailover ? (group == null ? 5 : 6) : 4) + writers;
        try (HikariDataSource ds = Databases.pool(jdbcUrl, connections, poolName)) {
            if (migrate) {
                PgLease.migrate(ds, probe.schema());
            }
            if (setupWorkload) {
                setUp(out, ds, tables);
                return 0;
            }
            if (work.equals("fenced-counter")) {
                FencedCounterTables.ensure(ds, tables, lease);
            }
            try (PgLease pglease = PgLease.create(ds, config)) {
                holder[0] = pglease.holderId();
                Map<String, Object> started = out.event("started");
                started.put(group == null ? "lease" : "group", group == null ? lease : group);
                started.put("holder", pglease.holderId());
                started.put("pid", ProcessHandle.current().pid());
                out.emit(started);
                installSignalHandlers();
                if (member != null) {
                    GroupNode.Work groupWork = new GroupNode.Work(
                            work.equals("fenced-counter"), schema, writers, writeHold, workInterval, ignoreDeadline);
                    new GroupNode(out, pglease, deadlines, groupWork, group, shards).run(member, stopped);
                    System.out.flush();
                    return 0;
                }
                if (!campaignDelay.isZero() && !awaitCampaignDelay(pglease, out)) {
                    return 0;
                }
                Elector elector = pglease.elector(lease, out.leaderListener(lease));
                java.util.List<Thread> workers = new java.util.ArrayList<>();
                CounterWriter.Settings writes =
                        new CounterWriter.Settings(tables, lease, writeHold, workInterval, ignoreDeadline, unfenced);
                if (work.equals("fenced-counter")) {
                    for (int i = 0; i < writers; i++) {
                        Thread worker = new Thread(
                                new CounterWriter(out, pglease, elector, ds, deadlines, writes, stopping),
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

    /** {@code --setup-workload}: the tables made, granted and protected once, by their owner. */
    private void setUp(JsonLines out, DataSource ds, String tables) throws java.sql.SQLException {
        String role = candidateRole == null
                ? PgLease.Roles.defaultsFor(schema).candidate()
                : Names.role("--candidate-role", candidateRole);
        FencedCounterTables.Setup done = FencedCounterTables.setUp(ds, schema, tables, lease, role);
        Map<String, Object> e = out.event("setup");
        e.put("lease", lease);
        e.put("tables", done.tables());
        e.put("granted_to", done.grantedTo());
        e.put("protected_with", done.protectedWith());
        out.emit(e);
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

    private static Ticker ticker(double rate) {
        if (rate == 1.0) {
            return Ticker.SYSTEM;
        }
        long origin = System.nanoTime();
        return () -> origin + (long) ((System.nanoTime() - origin) * rate);
    }
}
