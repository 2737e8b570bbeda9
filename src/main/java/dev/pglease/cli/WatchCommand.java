package dev.pglease.cli;

import dev.pglease.internal.sql.GroupStatements;
import dev.pglease.internal.sql.OperatorStatements;
import dev.pglease.internal.sql.OperatorStatements.LeaseEvent;
import dev.pglease.internal.sql.SessionStatements;
import dev.pglease.internal.sql.SqlErrors;
import dev.pglease.internal.store.Pooling;
import dev.pglease.internal.tool.DurationConverter;
import dev.pglease.internal.tool.JsonLines;
import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code pglease watch}: prints every change of holder as it happens, from {@code lease_events}. A notification on
 * the schema's channel ({@code "<schema>.leases"}) only wakes it: any login that can connect may send one, with any
 * payload, so watch never reads the payload. It reads the events committed since the last one it printed, in one
 * statement, at most once per {@link #COALESCE} however many notifications arrive, and once every
 * {@link #KEEP_ALIVE} while nothing happens (which also checks the connection).
 */
@Command(
        name = "watch",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Follow lease changes live (LISTEN/NOTIFY wakes it; the events are read from the table).",
            "Prints the current status, then one line for every change of holder (acquired, taken_over, "
                    + "released, force_released, handed_off) from <schema>.lease_events, moments after the "
                    + "database commits it. A notification on the channel \"<schema>.leases\" only wakes it: "
                    + "it then reads the new events from the table (at most once per 100 ms, however many "
                    + "notifications arrive), and never prints what a notification says. Reconnects by itself "
                    + "when the connection drops, prints the status again, and then the events it missed.",
            "",
            "Example: pglease watch payments"
        },
        footer = {
            "",
            "With --group GROUP: the group's status, then the changes of holder of its shards and its members",
            "joining, leaving and expiring (the members are read at every wake-up and at least every second).",
            "Runs until --count, --for, Ctrl-C or SIGTERM (exit code 0).",
            ExitCodes.EXIT_CODES_1,
            ExitCodes.EXIT_CODES_2
        })
final class WatchCommand extends OperatorCommand {

    /** The shortest time between two reads of the events, however many notifications arrive. */
    static final Duration COALESCE = Duration.ofMillis(100);
    /** How often the events are read while no notification arrives (a keep-alive of the connection). */
    static final Duration KEEP_ALIVE = Duration.ofSeconds(10);
    /** How often the members of a watched group are read while no notification arrives (expiries send none). */
    static final Duration MEMBER_POLL = Duration.ofSeconds(1);
    /** Longest wait between two looks at the stop flag (SIGTERM, SIGINT). */
    private static final long SLICE_MILLIS = 200;
    /** Events read per statement. */
    private static final int BATCH = 500;

    @Parameters(arity = "0..*", paramLabel = "NAME", description = "Only these leases (default: all).")
    List<String> names = new ArrayList<>();

    @Option(
            names = "--json",
            description = "One JSON object per event (t, lease, kind, token, holder, ...); no status table.")
    boolean json;

    @Option(names = "--count", paramLabel = "N", description = "Stop after N events (default: run until Ctrl-C).")
    Integer count;

    @Option(
            names = "--group",
            paramLabel = "GROUP",
            description = "Follow the lease group GROUP: its shards' changes of holder and its members' joins, "
                    + "leaves and expiries.")
    String group;

    @Option(
            names = "--for",
            paramLabel = "DURATION",
            converter = DurationConverter.class,
            description = "Stop after this long, e.g. 30s or 5m (default: run until Ctrl-C).")
    Duration runFor;

    private final AtomicBoolean stop = new AtomicBoolean();
    private EventCursor cursor;
    private int printed;
    /** With --group: its number of shards and its live members as last read, by id. */
    private int groupShards;

    private GroupStatements groupStatements;

    private Map<String, GroupStatements.MemberStatus> liveMembers;

    /** LISTEN through a transaction pooler would wait forever for notifications that never come: say so instead. */
    private void refuseTransactionPooler() throws CliFailure {
        boolean pooled;
        try {
            pooled = Pooling.transactionPooled(db.dataSource());
        } catch (SQLException e) {
            throw SqlErrors.connectionFailure(e) ? db.unreachable(e) : db.failure("could not connect", e);
        }
        if (pooled) {
            throw new CliFailure(
                    ExitCodes.FAILED,
                    "the JDBC URL goes through a transaction pooler (PgBouncer "
                            + "pool_mode=transaction): LISTEN there never delivers a notification. Give watch a URL that "
                            + "reaches PostgreSQL directly or through a session-pooled port");
        }
    }

    @Override
    int execute(PrintWriter out) throws CliFailure {
        if (count != null && count < 1) {
            throw new CliFailure(ExitCodes.USAGE, "--count must be at least 1, got " + count);
        }
        if (group != null && !names.isEmpty()) {
            throw new CliFailure(
                    ExitCodes.USAGE,
                    "--group follows one lease group; leave out the lease names " + String.join(", ", names));
        }
        String schema = db.schema();
        groupStatements = new GroupStatements(schema);
        String channel = SessionStatements.channel(schema);
        long end = runFor == null ? Long.MAX_VALUE : System.nanoTime() + runFor.toNanos();
        Signals signals = Signals.install(() -> stop.set(true));
        try {
            refuseTransactionPooler();
            Connection c = listen(schema, channel, out, true);
            try {
                follow(c, schema, channel, out, end);
            } finally {
                closeQuietly(c);
            }
        } finally {
            signals.restore();
        }
        return ExitCodes.OK;
    }

    /** Waits for wake-ups and reads the events until done; reconnects when the connection is lost. */
    private void follow(Connection first, String schema, String channel, PrintWriter out, long end) throws CliFailure {
        Connection[] c = {first};
        OperatorStatements statements = new OperatorStatements(schema);
        long lastRead = System.nanoTime();
        boolean woken = false;
        long keepAlive = (group == null ? KEEP_ALIVE : MEMBER_POLL).toNanos();
        while (!done(end)) {
            long now = System.nanoTime();
            try {
                if ((woken && now - lastRead >= COALESCE.toNanos()) || now - lastRead >= keepAlive) {
                    woken = false;
                    lastRead = now;
                    read(c[0], statements, out, end);
                    continue;
                }
                long due = woken ? lastRead + COALESCE.toNanos() : lastRead + keepAlive;
                long wait = Math.max(1, Math.min(SLICE_MILLIS, (Math.min(due, end) - now) / 1_000_000));
                PGNotification[] batch = c[0].unwrap(PGConnection.class).getNotifications((int) wait);
                // what a notification says is never used: it only means "something may have changed"
                woken |= batch != null && batch.length > 0;
            } catch (SQLException e) {
                closeQuietly(c[0]);
                c[0] = reconnect(schema, channel, out, e, end);
                if (c[0] == null) {
                    return;
                }
                woken = true;
                lastRead = System.nanoTime() - COALESCE.toNanos();
            }
        }
    }

    private boolean done(long end) {
        return stop.get() || (count != null && printed >= count) || end - System.nanoTime() <= 0;
    }

    /**
     * One statement per batch: the events above the cursor; prints those of the leases asked for (of the group's
     * shards, with --group). With --group, then reads the members and prints who joined, left or expired.
     */
    private void read(Connection c, OperatorStatements statements, PrintWriter out, long end) throws SQLException {
        List<LeaseEvent> batch;
        do {
            batch = statements.eventsAfter(c, cursor.after(), BATCH);
            for (LeaseEvent e : cursor.accept(batch, System.nanoTime())) {
                int shard = group == null ? -1 : shardOf(e.name());
                if (group == null ? names.isEmpty() || names.contains(e.name()) : shard >= 0) {
                    print(out, e, shard);
                    if (done(end)) {
                        return;
                    }
                }
            }
        } while (batch.size() == BATCH);
        if (group != null) {
            readMembers(c, out, end);
        }
    }

    /** The shard {@code lease} is of the watched group, or -1. */
    private int shardOf(String lease) {
        if (!lease.startsWith(group + "/")) {
            return -1;
        }
        String k = lease.substring(group.length() + 1);
        if (k.isEmpty()
                || k.length() > 6
                || (k.length() > 1 && k.charAt(0) == '0')
                || !k.chars().allMatch(ch -> ch >= '0' && ch <= '9')) {
            return -1;
        }
        int shard = Integer.parseInt(k);
        return shard < groupShards ? shard : -1;
    }

    /** Reads the group's members and prints the changes since the last read (none the first time). */
    private void readMembers(Connection c, PrintWriter out, long end) throws SQLException {
        Map<String, GroupStatements.MemberStatus> rows = new LinkedHashMap<>();
        for (GroupStatements.MemberStatus m : groupStatements.members(c, group)) {
            rows.put(m.member(), m);
        }
        Map<String, GroupStatements.MemberStatus> live = new LinkedHashMap<>();
        rows.values().stream().filter(GroupStatements.MemberStatus::live).forEach(m -> live.put(m.member(), m));
        Map<String, GroupStatements.MemberStatus> before = liveMembers;
        liveMembers = live;
        if (before == null) {
            return;
        }
        for (GroupStatements.MemberStatus m : live.values()) {
            if (!before.containsKey(m.member()) && !done(end)) {
                printMember(out, "member_joined", m);
            }
        }
        for (GroupStatements.MemberStatus m : before.values()) {
            if (!live.containsKey(m.member()) && !done(end)) {
                printMember(out, rows.containsKey(m.member()) ? "member_expired" : "member_left", m);
            }
        }
    }

    private void printMember(PrintWriter out, String kind, GroupStatements.MemberStatus m) {
        printed++;
        if (json) {
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("t", Instant.now().toString());
            e.put("group", group);
            e.put("kind", kind);
            e.put("member", m.member());
            e.put("weight", m.weight());
            e.put("priority", m.priority());
            e.put("joined_at", Table.iso(m.joinedAt()));
            out.println(JsonLines.toJson(e));
        } else {
            println(
                    out,
                    Table.time(Instant.now()) + "  " + group + "  " + String.format("%-14s", kind) + "  member "
                            + m.member() + "  weight " + m.weight() + "  priority " + m.priority());
        }
        out.flush();
    }

    private Connection listen(String schema, String channel, PrintWriter out, boolean first) throws CliFailure {
        Connection c = connectToSchema();
        try {
            // LISTEN first: a change committed from now on wakes this connection, and one committed before is in
            // what is read next
            SessionStatements.listen(c, channel);
            if (first) {
                cursor = new EventCursor(new OperatorStatements(schema).lastEventId(c));
            }
            Map<String, Object> groupStatus = null;
            if (group != null) {
                groupStatus = GroupStatus.read(c, schema, group);
                if (groupStatus == null) {
                    closeQuietly(c);
                    throw new CliFailure(ExitCodes.FAILED, "no lease group named " + group + " in schema " + schema);
                }
                groupShards = (Integer) groupStatus.get("shards");
                readMembers(c, out, Long.MAX_VALUE);
            }
            String watching = "watching "
                    + (group != null
                            ? "lease group " + group
                            : names.isEmpty() ? "all leases" : String.join(", ", names))
                    + " in schema " + schema + " (LISTEN \"" + channel + "\"); Ctrl-C to stop";
            if (json) {
                if (first) {
                    PrintWriter err = spec.commandLine().getErr();
                    println(err, watching);
                    err.flush();
                }
            } else {
                if (first) {
                    println(out, watching);
                }
                if (groupStatus != null) {
                    GroupStatus.printTables(out, groupStatus);
                    out.println();
                    out.flush();
                    return c;
                }
                List<Map<String, Object>> leases = StatusCommand.read(c, schema, names);
                Table table = new Table("LEASE", "HOLDER", "TOKEN", "HELD", "REMAINING");
                for (Map<String, Object> l : leases) {
                    table.row(
                            l.get("lease"),
                            l.get("holder"),
                            l.get("token"),
                            Boolean.TRUE.equals(l.get("held")) ? "yes" : "no",
                            Table.millis((Long) l.get("remaining_ms")));
                }
                if (table.isEmpty()) {
                    out.println("(no leases yet)");
                } else {
                    table.print(out);
                }
                out.println();
            }
            out.flush();
            return c;
        } catch (SQLException e) {
            closeQuietly(c);
            throw db.failure("could not listen on channel " + channel, e);
        }
    }

    private Connection reconnect(String schema, String channel, PrintWriter out, SQLException cause, long end)
            throws CliFailure {
        PrintWriter err = spec.commandLine().getErr();
        println(
                err,
                "pglease watch: connection lost (" + DatabaseOptions.oneLine(cause.getMessage())
                        + "); reconnecting, then printing the events committed meanwhile");
        err.flush();
        while (!done(end)) {
            long retryAt = System.nanoTime() + 1_000_000_000L;
            while (!done(end) && System.nanoTime() - retryAt < 0) {
                try {
                    Thread.sleep(Math.min(SLICE_MILLIS, Math.max(1, (retryAt - System.nanoTime()) / 1_000_000)));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return null;
                }
            }
            if (done(end)) {
                return null;
            }
            try {
                Connection c = listen(schema, channel, out, false);
                println(err, "pglease watch: reconnected");
                err.flush();
                return c;
            } catch (CliFailure f) {
                if (f.exitCode() == ExitCodes.SCHEMA_MISSING || f.exitCode() == ExitCodes.USAGE) {
                    throw f;
                }
                // still unreachable: keep trying
            }
        }
        return null;
    }

    private void print(PrintWriter out, LeaseEvent e, int shard) {
        printed++;
        if (json) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("t", Instant.now().toString());
            if (shard >= 0) {
                m.put("group", group);
                m.put("shard", shard);
            }
            m.put("lease", e.name());
            m.put("kind", e.kind());
            m.put("token", e.token());
            m.put("holder", e.holder());
            m.put("id", e.id());
            m.put("at", Table.iso(e.at()));
            m.put("term_token", Table.term(e.token()));
            m.put("previous_holder", e.previousHolder());
            m.put("changed_by", e.changedBy());
            out.println(JsonLines.toJson(m));
        } else {
            println(
                    out,
                    Table.time(e.at()) + "  " + e.name() + "  " + String.format("%-14s", e.kind()) + "  token "
                            + e.token() + "  holder " + (e.holder() == null ? "-" : e.holder()));
        }
        out.flush();
    }
}
