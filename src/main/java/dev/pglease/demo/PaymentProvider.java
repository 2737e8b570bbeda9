package dev.pglease.demo;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.pglease.ForwardFence;
import dev.pglease.http.FencingHeaders;
import dev.pglease.http.HttpFence;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import javax.sql.DataSource;

/**
 * A simulated payment provider on loopback. Every request carries the sender's lease and fencing token in the
 * headers of {@link FencingHeaders}; the provider admits it through the same validator as the servlet filter and
 * the Spring interceptor ({@link HttpFence}): only if no higher token of that lease was accepted before (a
 * forward-only {@link ForwardFence} checked and advanced in the same transaction that records the charge), and
 * records what it accepted and what it rejected. A refused request gets the validator's answer (400, or 409 with
 * lease, token presented and the token the fence is at).
 *
 * <ul>
 *   <li>{@code POST /claim} advances the fence only: a new leader calls it before it looks at unfinished work, so
 *       that nothing an older leader still has in flight can be accepted afterwards;</li>
 *   <li>{@code POST /charge?subscription=ID&period=P&amount=CENTS} charges a customer;</li>
 *   <li>{@code GET /charges?subscription=ID&period=P} tells whether that period was charged.</li>
 * </ul>
 */
final class PaymentProvider implements AutoCloseable {

    static final String HOLDER_HEADER = "Pglease-Holder";

    /** A stale request the provider refused. */
    record Rejection(int subscription, int period, long token, long fence, String holder, boolean alreadyCharged) {}

    private final DataSource ds;
    private final String schema;
    private final HttpFence fence;
    private final HttpServer server;
    private final ExecutorService executor;
    private final AtomicLong accepted = new AtomicLong();
    private final AtomicLong rejected = new AtomicLong();
    private final Consumer<Rejection> onRejection;

    PaymentProvider(DataSource ds, String schema, Consumer<Rejection> onRejection) throws IOException {
        this.ds = ds;
        this.schema = schema;
        this.onRejection = onRejection;
        this.fence = new HttpFence(ds, new ForwardFence(schema + ".provider_fence"));
        this.server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 64);
        this.executor = Executors.newFixedThreadPool(4, r -> {
            Thread t = new Thread(r, "payment-provider");
            t.setDaemon(true);
            return t;
        });
        server.setExecutor(executor);
        server.createContext("/claim", this::claim);
        server.createContext("/charge", this::charge);
        server.createContext("/charges", this::lookup);
        server.start();
    }

    URI uri() {
        return URI.create("http://" + server.getAddress().getAddress().getHostAddress() + ":"
                + server.getAddress().getPort());
    }

    long accepted() {
        return accepted.get();
    }

    long rejected() {
        return rejected.get();
    }

    private void claim(HttpExchange ex) throws IOException {
        try (ex) {
            if (!method(ex, "POST")) {
                return;
            }
            HttpFence.Verdict v = fence.admit(header(ex, FencingHeaders.LEASE), header(ex, FencingHeaders.TOKEN));
            respond(ex, v.status(), v.admitted() ? "{\"fence\":" + v.token() + "}" : v.json());
        }
    }

    private void charge(HttpExchange ex) throws IOException {
        try (ex) {
            if (!method(ex, "POST")) {
                return;
            }
            Map<String, String> q = query(ex);
            String holder = String.valueOf(ex.getRequestHeaders().getFirst(HOLDER_HEADER));
            Integer subscription = integer(q.get("subscription"));
            Integer period = integer(q.get("period"));
            Integer amount = integer(q.get("amount"));
            if (subscription == null || period == null || amount == null) {
                respond(ex, 400, "{\"error\":\"subscription, period and amount are required\"}");
                return;
            }
            try {
                HttpFence.Admitted<Long> charged =
                        fence.inTransaction(header(ex, FencingHeaders.LEASE), header(ex, FencingHeaders.TOKEN), c -> {
                            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + schema
                                    + ".provider_charges (subscription_id, period, amount_cents, token, holder) "
                                    + "VALUES (?, ?, ?, ?, ?) RETURNING id")) {
                                ps.setInt(1, subscription);
                                ps.setInt(2, period);
                                ps.setInt(3, amount);
                                ps.setLong(
                                        4,
                                        Long.parseLong(
                                                header(ex, FencingHeaders.TOKEN).strip()));
                                ps.setString(5, holder);
                                try (ResultSet rs = ps.executeQuery()) {
                                    rs.next();
                                    return rs.getLong(1);
                                }
                            }
                        });
                accepted.incrementAndGet();
                respond(ex, 200, "{\"charge_id\":" + charged.result() + "}");
            } catch (HttpFence.Refused refused) {
                HttpFence.Verdict v = refused.verdict();
                if (v.status() != 409) {
                    respond(ex, v.status(), v.json());
                    return;
                }
                Rejection r = recordRejection(subscription, period, v.token(), v.fence(), holder);
                rejected.incrementAndGet();
                onRejection.accept(r);
                String body = v.json();
                respond(
                        ex,
                        409,
                        body.substring(0, body.length() - 1) + ",\"already_charged\":" + r.alreadyCharged() + "}");
            } catch (SQLException e) {
                respond(ex, 503, "{\"error\":\"provider database unavailable\"}");
            }
        }
    }

    private void lookup(HttpExchange ex) throws IOException {
        try (ex) {
            if (!method(ex, "GET")) {
                return;
            }
            Map<String, String> q = query(ex);
            Integer subscription = integer(q.get("subscription"));
            Integer period = integer(q.get("period"));
            if (subscription == null || period == null) {
                respond(ex, 400, "{\"error\":\"subscription and period are required\"}");
                return;
            }
            try (Connection c = ds.getConnection()) {
                respond(ex, 200, "{\"charged\":" + charged(c, subscription, period) + "}");
            } catch (SQLException e) {
                respond(ex, 503, "{\"error\":\"provider database unavailable\"}");
            }
        }
    }

    private boolean charged(Connection c, int subscription, int period) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT EXISTS (SELECT 1 FROM " + schema
                + ".provider_charges WHERE subscription_id = ? AND period = ?)")) {
            ps.setInt(1, subscription);
            ps.setInt(2, period);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getBoolean(1);
            }
        }
    }

    private Rejection recordRejection(int subscription, int period, long token, Long fenceAt, String holder) {
        long current = fenceAt == null ? -1 : fenceAt;
        try (Connection c = ds.getConnection()) {
            boolean already = charged(c, subscription, period);
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + schema + ".provider_rejections "
                    + "(subscription_id, period, token, fence, holder, already_charged) VALUES (?, ?, ?, ?, ?, ?)")) {
                ps.setInt(1, subscription);
                ps.setInt(2, period);
                ps.setLong(3, token);
                ps.setLong(4, current);
                ps.setString(5, holder);
                ps.setBoolean(6, already);
                ps.executeUpdate();
            }
            return new Rejection(subscription, period, token, current, holder, already);
        } catch (SQLException e) {
            return new Rejection(subscription, period, token, current, holder, false);
        }
    }

    private static boolean method(HttpExchange ex, String method) throws IOException {
        if (!method.equals(ex.getRequestMethod())) {
            respond(ex, 405, "{\"error\":\"use " + method + "\"}");
            return false;
        }
        return true;
    }

    private static String header(HttpExchange ex, String name) {
        return ex.getRequestHeaders().getFirst(name);
    }

    private static Integer integer(String v) {
        try {
            return v == null ? null : Integer.valueOf(v);
        } catch (NumberFormatException e) {
            return null;
        }
    }

    private static Map<String, String> query(HttpExchange ex) {
        Map<String, String> m = new HashMap<>();
        String raw = ex.getRequestURI().getRawQuery();
        if (raw != null) {
            for (String pair : raw.split("&")) {
                int eq = pair.indexOf('=');
                if (eq > 0) {
                    m.put(
                            URLDecoder.decode(pair.substring(0, eq), StandardCharsets.UTF_8),
                            URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8));
                }
            }
        }
        return m;
    }

    private static void respond(HttpExchange ex, int status, String json) throws IOException {
        byte[] body = json.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, body.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(body);
        }
    }

    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
    }
}
