package dev.pglease.demo;

import com.zaxxer.hikari.HikariDataSource;
import dev.pglease.PgLease;
import dev.pglease.internal.sql.OperatorStatements;
import dev.pglease.internal.tool.Databases;
import dev.pglease.internal.tool.EmbeddedPostgresServer;
import dev.pglease.internal.tool.Visible;
import dev.pglease.internal.util.Secrets;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;

/**
 * The demo scenario: a subscription service whose charger nodes (separate JVMs) compete for the lease
 * "payments"; the leader charges due renewals through a payment provider that checks fencing tokens. The demo
 * freezes the leader with a charge in flight, lets a standby take over, thaws the old leader so that its late
 * request reaches the provider with a stale token, kills the next leader outright, and sums up.
 */
final class Demo {

    /** What a run is made of (the options of {@code pglease demo}). */
    record Settings(
            int nodes,
            Duration leaseDuration,
            Duration renewDeadline,
            Duration retryPeriod,
            Duration duration,
            String jdbcUrl,
            String nodeJdbcUrl,
            String schema,
            String demoSchema,
            String lease,
            int subscriptions,
            Duration cycle,
            boolean live,
            String nodeClasspath) {}

    private enum State {
        STARTING,
        STANDBY,
        LEADER,
        PAUSED,
        KILLED,
        STOPPED
    }

    private static final class Node {
        final String name;
        ChargerProcess process;
        String holder;
        State state = State.STARTING;
        long token = -1;
        long sent;
        long accepted;
        long rejected;
        long errors;
        Map<String, Object> inFlight;

        Node(String name) {
            this.name = name;
        }
    }

    private record Election(Node node, long token, long t) {}

    private final Settings s;
    private final PrintWriter out;
    private final long t0 = System.currentTimeMillis();
    private final List<Node> nodes = new ArrayList<>();
    private final List<Election> elections = new ArrayList<>();
    private final List<PaymentProvider.Rejection> rejections = new ArrayList<>();
    private final List<String> narrative = new ArrayList<>();
    private final Deque<String> recent = new ArrayDeque<>();
    private final List<String> problems = new ArrayList<>();
    private final AtomicBoolean cleaned = new AtomicBoolean();
    private volatile String phase = "starting";
    private volatile boolean finishing;
    private volatile String dbView = "lease not taken yet";
    private volatile boolean viewRunning = true;
    private volatile boolean viewStarted;
    private EmbeddedPostgresServer server;
    private HikariDataSource pool;
    private PaymentProvider provider;
    private Thread view;
    private Path logDirectory;

    Demo(Settings settings, PrintWriter out) {
        this.s = settings;
        this.out = out;
    }

    /** Runs the whole scenario and returns its summary; every process it started is gone when it returns. */
    DemoSummary run() throws Exception {
        Thread hook = new Thread(this::cleanup, "pglease-demo-cleanup");
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            return scenario();
        } catch (Exception | Error e) {
            if (cleaned.get()) {
                // interrupted (Ctrl-C): the shutdown hook is stopping everything; the failure is a consequence
                return new DemoSummary(0, 0, 0, 0, 0, List.of(), List.of("interrupted"));
            }
            throw e;
        } finally {
            cleanup();
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running or has run
            }
        }
    }

    private DemoSummary scenario() throws Exception {
        say("pglease demo: " + s.nodes() + " charger nodes compete for the lease \"" + s.lease() + "\" (lease "
                + fmt(s.leaseDuration()) + ", renew deadline " + fmt(s.renewDeadline()) + ", retry "
                + fmt(s.retryPeriod()) + ")");
        String url = s.jdbcUrl();
        String nodeUrl;
        PgLease.Roles roles = PgLease.Roles.defaultsFor(s.schema());
        if (url == null || url.isBlank()) {
            say("starting an embedded PostgreSQL (no --jdbc-url given)...");
            server = EmbeddedPostgresServer.start();
            say("embedded PostgreSQL is running on port " + server.port());
            DemoLogins logins = DemoLogins.create(server, s.schema());
            url = logins.ownerUrl();
            nodeUrl = logins.chargerUrl();
            say("logins: " + logins.owner() + " migrates and owns the schemas; the chargers log in as "
                    + logins.charger() + ", a member of " + roles.candidate() + " only");
        } else {
            say("using the database at " + Secrets.redact(url));
            nodeUrl = s.nodeJdbcUrl() == null ? url : s.nodeJdbcUrl();
            if (s.nodeJdbcUrl() == null) {
                say("!! the chargers log in as --jdbc-url's login: if it owns the schema or is a superuser, the "
                        + "schema's guards do not apply to them; --node-jdbc-url gives them a login in "
                        + roles.candidate() + " only");
            }
        }
        pool = Databases.pool(url, 8, "demo");
        PgLease.migrate(pool, s.schema());
        if (server == null) {
            Optional<String> foreign = DemoSchema.notTheDemos(pool, s.demoSchema());
            if (foreign.isPresent()) {
                return fail(foreign.get() + ": the demo drops and creates its schema again on every run, so it "
                        + "only ever drops one it made. Pass another --demo-schema, or drop " + s.demoSchema()
                        + " yourself if it is an old demo's");
            }
            say("!! DROP SCHEMA " + s.demoSchema() + " CASCADE, then CREATE SCHEMA " + s.demoSchema() + " (the "
                    + "demo's own, made by an earlier run or new) in " + Secrets.redact(url));
        }
        DemoSchema.create(pool, s.demoSchema(), s.subscriptions(), s.cycle());
        DemoSchema.grantAndProtect(pool, s.demoSchema(), s.schema(), s.lease(), roles.candidate());
        say("schema " + s.schema() + " migrated; " + s.subscriptions() + " subscriptions in " + s.demoSchema()
                + ".subscriptions, each due for renewal every " + fmt(s.cycle()) + ", protected with the lease \""
                + s.lease() + "\": the table refuses a write not fenced with the current token");
        provider = new PaymentProvider(pool, s.demoSchema(), this::onRejection);
        say("payment provider listening on " + provider.uri()
                + ": it checks the Pglease-Lease and Pglease-Token headers of every request");
        logDirectory = Files.createTempDirectory("pglease-demo-logs-");
        for (int i = 1; i <= s.nodes(); i++) {
            Node node = new Node("node" + i);
            synchronized (this) {
                nodes.add(node);
            }
            node.process = ChargerProcess.start(
                    node.name,
                    s.nodeClasspath(),
                    List.of(
                            "--schema",
                            s.schema(),
                            "--demo-schema",
                            s.demoSchema(),
                            "--lease",
                            s.lease(),
                            "--provider",
                            provider.uri().toString(),
                            "--holder-label",
                            node.name,
                            "--lease-duration",
                            s.leaseDuration().toMillis() + "ms",
                            "--renew-deadline",
                            s.renewDeadline().toMillis() + "ms",
                            "--retry-period",
                            s.retryPeriod().toMillis() + "ms",
                            "--cycle",
                            s.cycle().toMillis() + "ms"),
                    Map.of("PGLEASE_JDBC_URL", nodeUrl),
                    logDirectory.resolve(node.name + ".log"),
                    this::onEvent);
        }
        view = new Thread(this::viewLoop, "demo-view");
        view.setDaemon(true);
        viewStarted = true;
        view.start();

        if (await(() -> nodes.stream().noneMatch(n -> n.state == State.STARTING) ? true : null, 60_000) == null) {
            return fail("the charger nodes did not start within 60 s (their logs: " + logDirectory + ")");
        }
        Node first = await(this::leader, 30_000);
        if (first == null) {
            return fail("no node was elected within 30 s (logs: " + logDirectory + ")");
        }
        Duration window = s.duration().dividedBy(4);

        phase("steady state: " + first.name + " leads and charges, the others stand by");
        pause(window);

        // 1. Freeze the leader with a charge in flight: it has checked its lease, it has not sent the request.
        Node paused = await(this::leader, 10_000);
        if (paused == null) {
            return fail("no leader after the steady state (logs: " + logDirectory + ")");
        }
        phase("pause the leader");
        paused.process.command("arm");
        Map<String, Object> inFlight = await(() -> paused.inFlight, 10_000);
        paused.process.pause();
        long pausedAt = System.currentTimeMillis();
        long pausedToken = paused.token;
        synchronized (this) {
            paused.state = State.PAUSED;
        }
        if (inFlight == null) {
            problems.add(paused.name + " did not take a charge within 10 s; it was paused without one in flight");
            say(">> SIGSTOP " + paused.name + " (pid " + paused.process.pid() + "), token " + pausedToken);
        } else {
            say(">> SIGSTOP " + paused.name + " (pid " + paused.process.pid()
                    + ") with a charge in flight: subscription "
                    + inFlight.get("subscription") + " period " + inFlight.get("period") + ", token " + pausedToken
                    + " (lease checked, request not sent yet)");
        }
        DemoSummary.Failover f1 = awaitFailover("paused (SIGSTOP)", paused, pausedToken, pausedAt);
        phase("new leader at work while " + paused.name + " is frozen");
        pause(window);

        // 2. Thaw it: its late request carries the old token.
        phase("resume the old leader");
        int rejectedBefore;
        synchronized (this) {
            rejectedBefore = rejections.size();
            paused.state = State.STANDBY;
        }
        say(">> SIGCONT " + paused.name + ": it wakes up where it stopped and sends its charge with token "
                + pausedToken);
        paused.process.resume();
        paused.process.command("go");
        if (await(() -> rejections.size() > rejectedBefore ? true : null, 10_000) == null) {
            problems.add("the provider did not reject " + paused.name + "'s late request within 10 s");
        }
        pause(window);

        // 3. Kill the current leader outright.
        Node killed = await(this::leader, 10_000);
        DemoSummary.Failover f2 = null;
        if (killed == null) {
            problems.add("no leader to kill");
        } else {
            phase("kill the leader");
            long killedToken = killed.token;
            killed.process.kill();
            long killedAt = System.currentTimeMillis();
            synchronized (this) {
                killed.state = State.KILLED;
            }
            say(">> kill -9 " + killed.name + " (pid " + killed.process.pid() + "), token " + killedToken);
            f2 = awaitFailover("killed (kill -9)", killed, killedToken, killedAt);
            phase("after the kill");
            pause(window);
        }

        phase("stopping the nodes (SIGTERM releases the lease)");
        finishing = true;
        nodes.forEach(n -> n.process.requestStop());
        long stopDeadline = System.nanoTime() + 5_000_000_000L;
        for (Node n : nodes) {
            n.process.awaitStop(stopDeadline);
            synchronized (this) {
                if (n.state != State.KILLED) {
                    n.state = State.STOPPED;
                }
            }
        }
        stopView();
        return summarize(f1, f2);
    }

    private DemoSummary.Failover awaitFailover(String cause, Node from, long fromToken, long faultAt)
            throws InterruptedException {
        long timeout = s.leaseDuration().plus(s.renewDeadline()).toMillis() + 15_000;
        Election next = await(
                () -> elections.stream()
                        .filter(e -> e.node() != from && e.token() > fromToken)
                        .findFirst()
                        .orElse(null),
                timeout);
        if (next == null) {
            problems.add("no new leader within " + timeout + " ms after " + from.name + " was " + cause);
            return new DemoSummary.Failover(cause, from.name, fromToken, null, -1, -1);
        }
        long millis = Math.max(0, next.t() - faultAt);
        say("<< " + next.node().name + " elected with token " + next.token() + ", " + fmtMillis(millis) + " after "
                + from.name + " was " + cause);
        return new DemoSummary.Failover(cause, from.name, fromToken, next.node().name, next.token(), millis);
    }

    private DemoSummary summarize(DemoSummary.Failover f1, DemoSummary.Failover f2) throws SQLException {
        long[] totals;
        try (Connection c = pool.getConnection()) {
            totals = DemoSchema.totals(c, s.demoSchema());
        }
        long sent;
        long nodeRejected;
        synchronized (this) {
            sent = nodes.stream().mapToLong(n -> n.sent).sum();
            nodeRejected = nodes.stream().mapToLong(n -> n.rejected).sum();
        }
        long duplicates = totals[0] - totals[1];
        if (duplicates > 0) {
            problems.add(duplicates + " duplicate charge(s): a customer was charged twice for the same period");
        }
        if (totals[2] == 0) {
            problems.add("no stale request was rejected");
        }
        List<DemoSummary.Failover> failovers = new ArrayList<>();
        failovers.add(f1);
        if (f2 != null) {
            failovers.add(f2);
        }
        DemoSummary summary =
                new DemoSummary(totals[0], duplicates, totals[2], totals[3], sent, failovers, List.copyOf(problems));
        synchronized (out) {
            if (s.live()) {
                out.print("\033[H\033[2J");
                narrative.forEach(out::println);
            }
            out.println();
            out.println("== summary ==");
            out.printf(Locale.ROOT, "charges made (accepted by the provider):        %d%n", summary.chargesMade());
            out.printf(Locale.ROOT, "duplicate charges (same subscription+period):   %d%n", summary.duplicateCharges());
            out.printf(
                    Locale.ROOT,
                    "stale requests rejected by the provider:        %d (%d would have charged a "
                            + "customer twice)%n",
                    summary.staleRejected(),
                    summary.staleWouldDuplicate());
            out.printf(
                    Locale.ROOT,
                    "charge requests sent by the nodes:              %d (%d rejected)%n",
                    sent,
                    nodeRejected);
            int i = 1;
            for (DemoSummary.Failover f : failovers) {
                out.printf(
                        Locale.ROOT,
                        "failover %d: %s %s with token %d -> %s%n",
                        i++,
                        f.from(),
                        f.cause(),
                        f.fromToken(),
                        f.to() == null
                                ? "no new leader"
                                : f.to() + " elected with token " + f.toToken() + " after " + fmtMillis(f.millis()));
            }
            out.println(
                    "lease timing: duration " + fmt(s.leaseDuration()) + ", renew deadline " + fmt(s.renewDeadline())
                            + ", retry period " + fmt(s.retryPeriod()) + "; the demo took "
                            + fmtMillis(System.currentTimeMillis() - t0));
            if (summary.ok()) {
                out.println(
                        "result: OK, no customer was charged twice, and the stale leader's late charge was refused");
            } else {
                out.println("result: NOT AS EXPECTED: " + String.join("; ", summary.problems()));
                out.println("node logs: " + logDirectory);
            }
            out.flush();
        }
        return summary;
    }

    private DemoSummary fail(String problem) {
        problems.add(problem);
        stopView();
        synchronized (out) {
            out.println("result: NOT AS EXPECTED: " + problem);
            out.flush();
        }
        return new DemoSummary(0, 0, 0, 0, 0, List.of(), List.copyOf(problems));
    }

    // ---- events from the nodes and the provider

    private synchronized void onEvent(ChargerProcess process, Map<String, Object> e) {
        Node node = nodes.stream().filter(n -> n.process == process).findFirst().orElse(null);
        if (node == null) {
            return;
        }
        long token = e.get("token") instanceof Number n ? n.longValue() : -1;
        long t = e.get("t") instanceof Number n ? n.longValue() : System.currentTimeMillis();
        switch (String.valueOf(e.get("event"))) {
            case "started" -> {
                node.holder = String.valueOf(e.get("holder"));
                node.state = State.STANDBY;
                say(node.name + " started (pid " + e.get("pid") + ", holder id " + node.holder + ")");
            }
            case "elected" -> {
                node.token = token;
                if (node.state != State.PAUSED && node.state != State.KILLED) {
                    node.state = State.LEADER;
                }
                elections.add(new Election(node, token, t));
                say(node.name + " elected leader with token " + token);
            }
            case "revoked" -> {
                if (node.state == State.LEADER) {
                    node.state = State.STANDBY;
                }
                say(node.name + " stepped down (token " + token + ": " + e.get("reason") + ")");
            }
            case "released" -> {
                if (node.state == State.LEADER) {
                    node.state = State.STANDBY;
                }
                say(node.name + " released the lease (token " + token + ")");
            }
            case "claim" ->
                say(node.name
                        + ("accepted".equals(e.get("result"))
                                ? " fenced the provider at token " + token + " before touching unfinished work"
                                : " could not fence the provider with token " + token + ": a newer leader did"));
            case "reconciled" ->
                say(node.name + " settled subscription " + e.get("subscription") + " period "
                        + e.get("period") + " left in flight by token " + e.get("left_by_token") + ": "
                        + (Boolean.TRUE.equals(e.get("charged"))
                                ? "the provider has it, recorded as charged"
                                : "the provider never got it, charging it with token " + token));
            case "in-flight" -> node.inFlight = e;
            case "charge" -> {
                node.sent++;
                switch (String.valueOf(e.get("result"))) {
                    case "accepted" -> node.accepted++;
                    case "rejected" -> node.rejected++;
                    default -> node.errors++;
                }
            }
            case "error" -> {
                node.errors++;
                if (node.errors <= 3) {
                    say(node.name + ": " + e.get("reason"));
                }
            }
            default -> {
                // other events are not shown
            }
        }
        notifyAll();
    }

    private synchronized void onRejection(PaymentProvider.Rejection r) {
        rejections.add(r);
        String who =
                r.holder().contains("/") ? r.holder().substring(0, r.holder().indexOf('/')) : r.holder();
        say("<< provider REJECTED " + who + "'s charge for subscription " + r.subscription() + " period " + r.period()
                + ": token " + r.token() + " is stale, the fence is at " + r.fence()
                + (r.alreadyCharged()
                        ? " (that period was already charged by the new leader: a duplicate prevented)"
                        : ""));
        notifyAll();
    }

    private synchronized Node leader() {
        return nodes.stream()
                .filter(n -> n.state == State.LEADER)
                .max((a, b) -> Long.compare(a.token, b.token))
                .orElse(null);
    }

    private synchronized <T> T await(Supplier<T> condition, long timeoutMillis) throws InterruptedException {
        long end = System.nanoTime() + timeoutMillis * 1_000_000;
        T value;
        while ((value = condition.get()) == null) {
            long left = (end - System.nanoTime()) / 1_000_000;
            if (left <= 0) {
                return null;
            }
            wait(Math.min(left, 100));
        }
        return value;
    }

    // ---- the view

    private void phase(String name) {
        phase = name;
        say("-- " + name);
    }

    private void say(String text) {
        String line = "[" + clock() + "] " + Visible.text(text);
        synchronized (out) {
            narrative.add(line);
            if (s.live() && viewStarted) {
                recent.addLast(line);
                while (recent.size() > 14) {
                    recent.removeFirst();
                }
            } else {
                out.println(line);
                out.flush();
            }
        }
    }

    private String clock() {
        long ms = System.currentTimeMillis() - t0;
        return String.format(Locale.ROOT, "%02d:%04.1f", ms / 60_000, (ms % 60_000) / 1000.0);
    }

    private void viewLoop() {
        long every = s.live() ? 250 : 2_000;
        long next = System.currentTimeMillis() + every;
        while (viewRunning) {
            try {
                Thread.sleep(Math.max(1, next - System.currentTimeMillis()));
            } catch (InterruptedException e) {
                return;
            }
            next += every;
            if (!viewRunning) {
                return;
            }
            refreshDatabaseView();
            if (s.live()) {
                render();
            } else if (!finishing) {
                String line = statusLine();
                synchronized (out) {
                    out.println("[" + clock() + "]    " + line);
                    out.flush();
                }
            }
        }
    }

    private void refreshDatabaseView() {
        try (Connection c = pool.getConnection()) {
            dbView = "lease not taken yet";
            for (OperatorStatements.LeaseStatus l : new OperatorStatements(s.schema()).status(c, List.of(s.lease()))) {
                String holder = l.holder();
                String name = holder == null
                        ? "nobody"
                        : holder.contains("/") ? holder.substring(0, holder.indexOf('/')) : holder;
                dbView = l.held()
                        ? "lease held by " + name + " with token " + l.token() + ", "
                                + fmtMillis(l.remainingMillis() == null ? 0 : l.remainingMillis())
                                + " left on the DB clock"
                        : "lease NOT held (token " + l.token()
                                + (holder == null ? "" : ", " + name + " stopped renewing") + ")";
            }
            long[] totals = DemoSchema.totals(c, s.demoSchema());
            dbView += " | provider: " + totals[0] + " charges accepted, " + totals[2] + " stale rejected, "
                    + (totals[0] - totals[1]) + " duplicates";
            dbView = Visible.text(dbView);
        } catch (SQLException | RuntimeException e) {
            dbView = "database: " + Visible.text(Secrets.redact(String.valueOf(e.getMessage())));
        }
    }

    private synchronized String statusLine() {
        StringBuilder b = new StringBuilder(dbView);
        b.append(" | nodes:");
        for (Node n : nodes) {
            b.append(' ').append(n.name).append('=').append(n.state.name().toLowerCase(Locale.ROOT));
        }
        return b.toString();
    }

    private void render() {
        StringBuilder b = new StringBuilder("\033[H\033[2J");
        b.append("pglease demo   lease \"")
                .append(s.lease())
                .append("\"   ")
                .append(clock())
                .append("   phase: ")
                .append(phase)
                .append("\n\n");
        b.append(String.format(
                Locale.ROOT,
                "  %-7s %-8s %-8s %6s %6s %9s %9s%n",
                "NODE",
                "PID",
                "STATE",
                "TOKEN",
                "SENT",
                "ACCEPTED",
                "REJECTED"));
        synchronized (this) {
            for (Node n : nodes) {
                b.append(String.format(
                        Locale.ROOT,
                        "  %-7s %-8s %-8s %6s %6d %9d %9d%n",
                        n.name,
                        n.process == null ? "-" : n.process.pid(),
                        n.state.name().toLowerCase(Locale.ROOT),
                        n.token < 0 ? "-" : n.token,
                        n.sent,
                        n.accepted,
                        n.rejected));
            }
        }
        b.append("\n  ").append(dbView.replace(" | ", "\n  ")).append("\n\n");
        synchronized (out) {
            recent.forEach(l -> b.append(l).append('\n'));
            out.print(b);
            out.flush();
        }
    }

    private void stopView() {
        viewRunning = false;
        if (view != null) {
            view.interrupt();
            try {
                view.join(2_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    private static void pause(Duration d) throws InterruptedException {
        Thread.sleep(Math.max(0, d.toMillis()));
    }

    private static String fmt(Duration d) {
        return fmtMillis(d.toMillis());
    }

    private static String fmtMillis(long ms) {
        if (ms < 1_000) {
            return ms + "ms";
        }
        return String.format(Locale.ROOT, "%.2fs", ms / 1000.0);
    }

    // ---- cleanup, also from the shutdown hook (Ctrl-C)

    private void cleanup() {
        if (!cleaned.compareAndSet(false, true)) {
            return;
        }
        viewRunning = false;
        List<Node> started;
        synchronized (this) {
            started = new ArrayList<>(nodes);
        }
        // all at once: SIGCONT + SIGTERM to every node, then wait (SIGKILL after 3 s)
        started.stream().filter(n -> n.process != null).forEach(n -> n.process.requestStop());
        long deadline = System.nanoTime() + 3_000_000_000L;
        started.stream().filter(n -> n.process != null).forEach(n -> n.process.awaitStop(deadline));
        quietly(() -> provider.close(), provider);
        quietly(() -> pool.close(), pool);
        quietly(() -> server.close(), server);
        if (logDirectory != null && problems.isEmpty()) {
            deleteLogs();
        }
    }

    private static void quietly(Runnable step, Object target) {
        if (target == null) {
            return;
        }
        try {
            step.run();
        } catch (RuntimeException e) {
            // cleanup goes on with the next step
        }
    }

    private void deleteLogs() {
        try (var files = Files.list(logDirectory)) {
            files.forEach(f -> f.toFile().delete());
            Files.deleteIfExists(logDirectory);
        } catch (IOException ignored) {
            // best effort
        }
    }
}
