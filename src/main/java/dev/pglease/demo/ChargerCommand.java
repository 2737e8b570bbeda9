package dev.pglease.demo;

import com.zaxxer.hikari.HikariDataSource;
import dev.pglease.Elector;
import dev.pglease.Leadership;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.PgLease;
import dev.pglease.http.FencingHeaders;
import dev.pglease.internal.tool.Databases;
import dev.pglease.internal.tool.DurationConverter;
import dev.pglease.internal.tool.JsonLines;
import dev.pglease.internal.util.Secrets;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * One charger node of the demo (a separate JVM started by {@code pglease demo}): campaigns for the lease and, while
 * it leads, charges due subscriptions through the payment provider, passing its fencing token with every request.
 *
 * <p>On every new grant it first fences the provider ({@code POST /claim} with its token), so that nothing an older
 * leader still has in flight can be accepted any more, and only then reconciles the charges an older leader left in
 * flight (asking the provider whether they went through). That order is what makes duplicate charges impossible.
 *
 * <p>Reports JSON lines on stdout like the node command. Reads commands from stdin: {@code arm} makes the next charge
 * stop between its validity check and its request until {@code go} (so the demo can freeze the process exactly
 * there); end of stdin (the demo is gone) releases the lease and exits.
 */
@Command(
        name = "demo-charger",
        hidden = true,
        mixinStandardHelpOptions = true,
        description = "One charger node of the demo (started by `pglease demo`; not meant to be run by hand).")
public final class ChargerCommand implements Callable<Integer> {

    @Option(
            names = "--jdbc-url",
            defaultValue = "${env:PGLEASE_JDBC_URL}",
            description = "PostgreSQL JDBC URL (default: $PGLEASE_JDBC_URL)")
    String jdbcUrl;

    @Option(names = "--schema", defaultValue = "pglease", description = "pglease schema")
    String schema;

    @Option(names = "--demo-schema", defaultValue = "pglease_demo", description = "Schema of the demo tables")
    String demoSchema;

    @Option(names = "--lease", defaultValue = "payments", description = "Lease name")
    String lease;

    @Option(names = "--provider", required = true, description = "Base URL of the payment provider")
    URI provider;

    @Option(names = "--lease-duration", defaultValue = "2s", converter = DurationConverter.class)
    Duration leaseDuration;

    @Option(names = "--renew-deadline", defaultValue = "1500ms", converter = DurationConverter.class)
    Duration renewDeadline;

    @Option(names = "--retry-period", defaultValue = "300ms", converter = DurationConverter.class)
    Duration retryPeriod;

    @Option(
            names = "--charge-interval",
            defaultValue = "40ms",
            converter = DurationConverter.class,
            description = "Pause between two charges")
    Duration chargeInterval;

    @Option(
            names = "--cycle",
            defaultValue = "4s",
            converter = DurationConverter.class,
            description = "Billing period of a subscription (a month, compressed)")
    Duration cycle;

    @Option(names = "--holder-label", description = "Start of the holder id")
    String holderLabel;

    private final CountDownLatch stopped = new CountDownLatch(1);
    private final AtomicBoolean stopping = new AtomicBoolean();
    private final AtomicBoolean armed = new AtomicBoolean();
    private volatile CountDownLatch go = new CountDownLatch(1);
    private JsonLines out;
    private HttpClient http;

    @Override
    public Integer call() throws Exception {
        out = new JsonLines(System.out, 0);
        http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
        LeaseConfig.Builder builder = LeaseConfig.builder()
                .schema(schema)
                .leaseDuration(leaseDuration)
                .renewDeadline(renewDeadline)
                .retryPeriod(retryPeriod);
        if (holderLabel != null) {
            builder.holderLabel(holderLabel);
        }
        try (HikariDataSource ds = Databases.pool(jdbcUrl, 4, "charger");
                PgLease pglease = PgLease.create(ds, builder.build())) {
            Map<String, Object> started = out.event("started");
            started.put("lease", lease);
            started.put("holder", pglease.holderId());
            started.put("pid", ProcessHandle.current().pid());
            out.emit(started);
            Elector elector = pglease.elector(lease, out.leaderListener(lease));
            Thread worker = new Thread(() -> work(pglease, elector), "charger");
            worker.setDaemon(true);
            worker.start();
            Thread commands = new Thread(this::readCommands, "commands");
            commands.setDaemon(true);
            commands.start();
            sun.misc.Signal.handle(new sun.misc.Signal("TERM"), s -> stopped.countDown());
            sun.misc.Signal.handle(new sun.misc.Signal("INT"), s -> stopped.countDown());
            stopped.await();
            stopping.set(true);
            go.countDown();
            worker.join(2_000);
            elector.close();
        }
        System.out.flush();
        return 0;
    }

    private void readCommands() {
        try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
            String line;
            while ((line = in.readLine()) != null) {
                switch (line.trim()) {
                    case "arm" -> {
                        go = new CountDownLatch(1);
                        armed.set(true);
                    }
                    case "go" -> go.countDown();
                    default -> {
                        // unknown commands are ignored
                    }
                }
            }
        } catch (IOException ignored) {
            // treated as the end of input
        }
        stopped.countDown();
    }

    /** A subscription renewal taken for charging. */
    private record Due(int subscription, int period, int amount) {}

    private void work(PgLease pglease, Elector elector) {
        long fencedWith = -1;
        while (!stopping.get()) {
            Optional<Leadership> current = elector.leadership();
            if (current.isEmpty() || !current.get().isValid()) {
                sleep(Duration.ofMillis(20));
                continue;
            }
            Leadership l = current.get();
            try {
                if (l.token() != fencedWith) {
                    if (!claim(l)) {
                        waitWhileValid(l);
                        continue;
                    }
                    reconcile(pglease, l);
                    fencedWith = l.token();
                }
                Optional<Due> due = pglease.inFencedTransaction(l, c -> takeDue(c, l.token()));
                if (due.isPresent()) {
                    // Building the request checks the grant: from here on this node believes it may charge. A
                    // pause now is the dangerous moment.
                    HttpRequest request = request(
                                    l,
                                    "/charge?subscription=" + due.get().subscription() + "&period="
                                            + due.get().period() + "&amount="
                                            + due.get().amount())
                            .POST(HttpRequest.BodyPublishers.noBody())
                            .build();
                    if (armed.compareAndSet(true, false)) {
                        Map<String, Object> e = charge("in-flight", l, due.get());
                        out.emit(e);
                        go.await(30, TimeUnit.SECONDS);
                    }
                    if (!send(pglease, l, due.get(), request)) {
                        fencedWith = -1;
                    }
                }
            } catch (LeaseException e) {
                // lost the lease (or a newer leader exists): the next iteration waits for a new grant
            } catch (SQLException | IOException e) {
                Map<String, Object> ev = out.event("error");
                ev.put("lease", lease);
                ev.put("holder", l.holder());
                ev.put("token", l.token());
                ev.put("reason", Secrets.redact(String.valueOf(e.getMessage())));
                out.emit(ev);
                fencedWith = -1;
            } catch (InterruptedException e) {
                return;
            }
            sleep(chargeInterval);
        }
    }

    /** Sends one charge; returns false when its outcome is unknown (to be reconciled). */
    private boolean send(PgLease pglease, Leadership l, Due due, HttpRequest request)
            throws SQLException, InterruptedException {
        Map<String, Object> e = charge("charge", l, due);
        HttpResponse<String> response;
        try {
            response = http.send(request, HttpResponse.BodyHandlers.ofString());
        } catch (IOException io) {
            e.put("result", "error");
            e.put("reason", String.valueOf(io.getMessage()));
            e.put("t", out.wallMillis());
            out.emit(e);
            return false;
        }
        e.put("t", out.wallMillis());
        if (response.statusCode() == 200) {
            e.put("result", "accepted");
            out.emit(e);
            try {
                pglease.inFencedTransaction(l, c -> markCharged(c, due.subscription(), due.period()));
            } catch (LeaseException lost) {
                // charged but not recorded: it stays in flight and the next leader reconciles it with the provider
            }
            return true;
        }
        if (response.statusCode() == 409) {
            e.put("result", "rejected");
            e.put("response", response.body());
            out.emit(e);
            waitWhileValid(l);
            return true;
        }
        e.put("result", "error");
        e.put("status", response.statusCode());
        out.emit(e);
        return false;
    }

    /** Fences the provider with this token before looking at unfinished work. */
    private boolean claim(Leadership l) throws IOException, InterruptedException {
        HttpResponse<String> response = http.send(
                request(l, "/claim").POST(HttpRequest.BodyPublishers.noBody()).build(),
                HttpResponse.BodyHandlers.ofString());
        Map<String, Object> e = out.event("claim");
        e.put("lease", lease);
        e.put("holder", l.holder());
        e.put("token", l.token());
        e.put("result", response.statusCode() == 200 ? "accepted" : "rejected");
        out.emit(e);
        if (response.statusCode() != 200 && response.statusCode() != 409) {
            throw new IOException("provider answered " + response.statusCode() + " to the claim");
        }
        return response.statusCode() == 200;
    }

    /** Settles every charge an earlier leader (or this one, after an error) left in flight. */
    private void reconcile(PgLease pglease, Leadership l) throws SQLException, IOException, InterruptedException {
        List<long[]> inFlight = pglease.inFencedTransaction(l, c -> {
            List<long[]> rows = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement("SELECT id, in_flight_period, in_flight_token FROM "
                            + demoSchema + ".subscriptions WHERE in_flight_token IS NOT NULL ORDER BY id");
                    ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    rows.add(new long[] {rs.getInt(1), rs.getInt(2), rs.getLong(3)});
                }
            }
            return rows;
        });
        for (long[] entry : inFlight) {
            int subscription = (int) entry[0];
            int period = (int) entry[1];
            HttpResponse<String> response = http.send(
                    request(l, "/charges?subscription=" + subscription + "&period=" + period)
                            .GET()
                            .build(),
                    HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() != 200) {
                throw new IOException("provider answered " + response.statusCode() + " to a charge lookup");
            }
            boolean charged = response.body().contains("\"charged\":true");
            pglease.inFencedTransaction(
                    l, c -> charged ? markCharged(c, subscription, period) : clearInFlight(c, subscription, period));
            Map<String, Object> e = out.event("reconciled");
            e.put("lease", lease);
            e.put("holder", l.holder());
            e.put("token", l.token());
            e.put("subscription", subscription);
            e.put("period", period);
            e.put("left_by_token", entry[2]);
            e.put("charged", charged);
            out.emit(e);
        }
    }

    /** A request to the provider under {@code l}: its lease and token in the fencing headers (checked valid). */
    private HttpRequest.Builder request(Leadership l, String path) {
        return FencingHeaders.addTo(HttpRequest.newBuilder(provider.resolve(path)), l)
                .timeout(Duration.ofSeconds(3))
                .header(PaymentProvider.HOLDER_HEADER, l.holder());
    }

    private Optional<Due> takeDue(Connection c, long token) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("UPDATE " + demoSchema + ".subscriptions "
                + "SET in_flight_token = ?, in_flight_period = period WHERE id = (SELECT id FROM " + demoSchema
                + ".subscriptions WHERE in_flight_token IS NULL AND next_charge_at <= clock_timestamp() "
                + "ORDER BY next_charge_at, id LIMIT 1 FOR UPDATE) RETURNING id, period, amount_cents")) {
            ps.setLong(1, token);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(new Due(rs.getInt(1), rs.getInt(2), rs.getInt(3))) : Optional.empty();
            }
        }
    }

    private int markCharged(Connection c, int subscription, int period) throws SQLException {
        try (PreparedStatement ps =
                c.prepareStatement("UPDATE " + demoSchema + ".subscriptions SET period = period + 1, "
                        + "next_charge_at = next_charge_at + ? * interval '1 millisecond', in_flight_token = NULL, "
                        + "in_flight_period = NULL, last_charged_at = clock_timestamp() WHERE id = ? AND period = ?")) {
            ps.setLong(1, cycle.toMillis());
            ps.setInt(2, subscription);
            ps.setInt(3, period);
            return ps.executeUpdate();
        }
    }

    private int clearInFlight(Connection c, int subscription, int period) throws SQLException {
        try (PreparedStatement ps =
                c.prepareStatement("UPDATE " + demoSchema + ".subscriptions SET in_flight_token = NULL, "
                        + "in_flight_period = NULL WHERE id = ? AND in_flight_period = ?")) {
            ps.setInt(1, subscription);
            ps.setInt(2, period);
            return ps.executeUpdate();
        }
    }

    private Map<String, Object> charge(String event, Leadership l, Due due) {
        Map<String, Object> e = out.event(event);
        e.put("lease", lease);
        e.put("holder", l.holder());
        e.put("token", l.token());
        e.put("subscription", due.subscription());
        e.put("period", due.period());
        e.put("amount", due.amount());
        e.put("start", e.get("t"));
        return e;
    }

    private void waitWhileValid(Leadership l) {
        while (l.isValid() && !stopping.get()) {
            sleep(Duration.ofMillis(50));
        }
    }

    private static void sleep(Duration d) {
        try {
            TimeUnit.NANOSECONDS.sleep(d.toNanos());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
