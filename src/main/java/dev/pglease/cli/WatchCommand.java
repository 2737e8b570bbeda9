package dev.pglease.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pglease.internal.sql.SessionStatements;
import dev.pglease.internal.sql.SqlErrors;
import dev.pglease.internal.store.Pooling;
import dev.pglease.internal.tool.DurationConverter;
import dev.pglease.internal.tool.JsonLines;
import java.io.IOException;
import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.postgresql.PGConnection;
import org.postgresql.PGNotification;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code pglease watch}: prints every change of holder as it happens. Driven by LISTEN on the channel the lease
 * trigger notifies ({@code "<schema>.leases"}), so it costs nothing while nothing changes: it does not poll.
 */
@Command(
        name = "watch",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Follow lease changes live (LISTEN/NOTIFY, no polling).",
            "Prints the current status, then one line for every change of holder (acquired, taken_over, "
                    + "released, force_released, handed_off) the moment the database commits it. Driven by "
                    + "LISTEN on the channel \"<schema>.leases\" that the lease trigger notifies, not by polling. "
                    + "Reconnects by itself when the connection drops, and prints the status again then, since "
                    + "changes may have been missed.",
            "",
            "Example: pglease watch payments"
        },
        footer = {"", ExitCodes.EXIT_CODES_1, ExitCodes.EXIT_CODES_2})
final class WatchCommand extends OperatorCommand {

    private static final ObjectMapper MAPPER = new ObjectMapper();

    @Parameters(arity = "0..*", paramLabel = "NAME", description = "Only these leases (default: all).")
    List<String> names = new ArrayList<>();

    @Option(
            names = "--json",
            description = "One JSON object per event (t, lease, kind, token, holder); no status table.")
    boolean json;

    @Option(names = "--count", paramLabel = "N", description = "Stop after N events (default: run until Ctrl-C).")
    Integer count;

    @Option(
            names = "--for",
            paramLabel = "DURATION",
            converter = DurationConverter.class,
            description = "Stop after this long, e.g. 30s or 5m (default: run until Ctrl-C).")
    Duration runFor;

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
        String schema = db.schema();
        String channel = SessionStatements.channel(schema);
        long end = runFor == null ? Long.MAX_VALUE : System.nanoTime() + runFor.toNanos();
        int seen = 0;
        Connection c = listen(schema, channel, out, true);
        try {
            while (count == null || seen < count) {
                long left = end - System.nanoTime();
                if (left <= 0) {
                    break;
                }
                int wait = (int) Math.max(1, Math.min(Duration.ofNanos(left).toMillis(), 10_000));
                PGNotification[] batch;
                try {
                    batch = c.unwrap(PGConnection.class).getNotifications(wait);
                    if (batch == null || batch.length == 0) {
                        if (!c.isValid(2)) {
                            throw new SQLException("connection is no longer valid", "08006");
                        }
                        continue;
                    }
                } catch (SQLException e) {
                    closeQuietly(c);
                    c = reconnect(schema, channel, out, e, end);
                    if (c == null) {
                        break;
                    }
                    continue;
                }
                for (PGNotification n : batch) {
                    if (!channel.equals(n.getName())) {
                        continue;
                    }
                    Map<String, Object> event = parse(n.getParameter());
                    if (event == null || (!names.isEmpty() && !names.contains(String.valueOf(event.get("lease"))))) {
                        continue;
                    }
                    print(out, event);
                    seen++;
                    if (count != null && seen >= count) {
                        break;
                    }
                }
            }
        } finally {
            if (c != null) {
                closeQuietly(c);
            }
        }
        return ExitCodes.OK;
    }

    private Connection listen(String schema, String channel, PrintWriter out, boolean first) throws CliFailure {
        if (first) {
            refuseTransactionPooler();
        }
        Connection c = connectToSchema();
        try {
            SessionStatements.listen(c, channel);
            if (!json) {
                if (first) {
                    out.println("watching " + (names.isEmpty() ? "all leases" : String.join(", ", names))
                            + " in schema " + schema + " (LISTEN \"" + channel + "\"); Ctrl-C to stop");
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
        err.println("pglease watch: connection lost (" + DatabaseOptions.oneLine(cause.getMessage())
                + "); reconnecting, events until then are missed");
        err.flush();
        while (end - System.nanoTime() > 0) {
            try {
                Thread.sleep(1_000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return null;
            }
            try {
                Connection c = listen(schema, channel, out, false);
                err.println("pglease watch: reconnected");
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

    @SuppressWarnings("unchecked")
    private static Map<String, Object> parse(String payload) {
        try {
            Map<String, Object> p = MAPPER.readValue(payload, Map.class);
            Map<String, Object> e = new LinkedHashMap<>();
            e.put("t", Instant.now().toString());
            e.put("lease", p.get("name"));
            e.put("kind", p.get("kind"));
            e.put("token", p.get("token"));
            e.put("holder", p.get("holder"));
            return e;
        } catch (IOException e) {
            return null;
        }
    }

    private void print(PrintWriter out, Map<String, Object> e) {
        if (json) {
            out.println(JsonLines.toJson(e));
        } else {
            out.println(Table.time(Instant.parse((String) e.get("t"))) + "  " + e.get("lease") + "  "
                    + String.format("%-14s", e.get("kind")) + "  token " + e.get("token") + "  holder "
                    + (e.get("holder") == null ? "-" : e.get("holder")));
        }
        out.flush();
    }
}
