package dev.pglease.http;

import dev.pglease.FencedWork;
import dev.pglease.ForwardFence;
import dev.pglease.LeaseException;
import dev.pglease.internal.sql.SqlErrors;
import dev.pglease.internal.util.Names;
import java.sql.Connection;
import java.sql.SQLException;
import java.util.Objects;
import java.util.OptionalLong;
import java.util.Set;
import java.util.TreeSet;
import javax.sql.DataSource;

/**
 * The receiving side of fenced HTTP requests: admits a request only if its token (header {@value
 * FencingHeaders#TOKEN}) is not below a token of the same lease (header {@value FencingHeaders#LEASE}) admitted
 * before, advancing a {@link ForwardFence} (resource: the lease name) to it. Once a request with token {@code t} was
 * admitted, every later request with a lower token is refused: a paused or cut-off ex-leader's late requests never
 * act after its successor's.
 *
 * <p>Outcomes, as a {@link Verdict} with the HTTP status and a JSON body to send:
 * <ul>
 *   <li>200: admitted (the fence is at the token now);</li>
 *   <li>400: a header is missing or malformed, or names a lease this endpoint does not accept;</li>
 *   <li>409: the token is older than the fence, or, on the pglease schema's fence, not the lease's current grant
 *       ({@code "stale fencing token"}), or a token the lease never granted ({@code "token not granted by the
 *       lease"}); the body names the lease, the token presented and the token the fence is at:
 *       {@code {"error":"stale fencing token","lease":"payments","token":4294967313,"fence":4294967314}};</li>
 *   <li>503: the fence's database could not be reached.</li>
 * </ul>
 *
 * <p>{@link #admit} advances the fence in a transaction of its own before the request is handled ({@link
 * FencingFilter}, {@link FencingHandlerInterceptor}): it orders admissions, and a request admitted before a newer
 * one may still be in its handler when the newer one is admitted. Where the handler's own writes must be ordered
 * with the fence too, let the handler write in the fence's transaction instead: {@link #inTransaction}.
 */
public final class HttpFence {

    /**
     * The request attribute under which {@link FencingFilter} and {@link FencingHandlerInterceptor} leave the
     * {@link Verdict} of an admitted request (lease and token), for the handler.
     */
    public static final String ADMITTED = "dev.pglease.http.admitted";

    private final DataSource dataSource;
    private final ForwardFence fence;
    private final Set<String> leases;

    /**
     * A fence for requests of any lease, each lease with its own fence row (resource: the lease name).
     *
     * @param dataSource the database of the fence table
     * @param fence      the fence table: one of your own ({@link ForwardFence#createTable}), or the pglease
     *                   schema's ({@code PgLease.forwardFence()}), which also refuses tokens the lease never granted
     */
    public HttpFence(DataSource dataSource, ForwardFence fence) {
        this(dataSource, fence, Set.of());
    }

    /**
     * A fence for requests of the given leases only; a request naming another lease is refused with 400.
     *
     * @throws IllegalArgumentException when a lease name is invalid
     */
    public HttpFence(DataSource dataSource, ForwardFence fence, Set<String> leases) {
        this.dataSource = Objects.requireNonNull(dataSource, "dataSource must not be null");
        this.fence = Objects.requireNonNull(fence, "fence must not be null");
        Objects.requireNonNull(leases, "leases must not be null");
        leases.forEach(Names::leaseName);
        this.leases = Set.copyOf(leases);
    }

    /** The fence table behind this fence. */
    public ForwardFence fence() {
        return fence;
    }

    /**
     * Admits a request with these header values (either may be {@code null}: missing), advancing the fence in a
     * transaction of its own.
     */
    public Verdict admit(String leaseHeader, String tokenHeader) {
        try {
            return inTransaction(leaseHeader, tokenHeader, c -> null).verdict();
        } catch (Refused refused) {
            return refused.verdict();
        } catch (SQLException e) {
            return unavailable(e);
        }
    }

    /**
     * Admits a request and runs {@code work} in the same READ COMMITTED transaction as the fence's advance: the
     * fence row stays locked until the work commits, so requests of one lease are handled one at a time in token
     * order, and the work commits only with the fence.
     *
     * @return the verdict (200) and what the work returned
     * @throws Refused      when the request is refused (400, 409); nothing was done
     * @throws SQLException from the work or the fence's database; the transaction is rolled back
     */
    public <T> Admitted<T> inTransaction(String leaseHeader, String tokenHeader, FencedWork<T> work)
            throws SQLException {
        Objects.requireNonNull(work, "work must not be null");
        Presented presented = presented(leaseHeader, tokenHeader);
        String lease = presented.lease();
        long token = presented.token();
        try {
            T result = fence.inTransaction(dataSource, lease, lease, token, work);
            return new Admitted<>(new Verdict(200, null, null, lease, token, token), result);
        } catch (LeaseException e) {
            if (e.reason() != LeaseException.Reason.STALE_TOKEN) {
                throw e;
            }
            OptionalLong at = current(lease);
            boolean neverGranted = e.getCause() instanceof SQLException s && SqlErrors.staleFence(s);
            throw new Refused(new Verdict(
                    409,
                    neverGranted ? "token not granted by the lease" : "stale fencing token",
                    null,
                    lease,
                    token,
                    at.isPresent() ? at.getAsLong() : null));
        }
    }

    /** Where the fence of {@code lease} is, if a request of it was admitted yet. */
    public OptionalLong current(String lease) throws SQLException {
        try (Connection c = dataSource.getConnection()) {
            return fence.current(c, lease);
        }
    }

    private record Presented(String lease, long token) {}

    private Presented presented(String leaseHeader, String tokenHeader) {
        if (leaseHeader == null || leaseHeader.isBlank()) {
            throw badRequest(
                    FencingHeaders.LEASE,
                    "missing header " + FencingHeaders.LEASE + " (the lease whose " + "token the request carries)",
                    null,
                    null);
        }
        String lease;
        try {
            lease = Names.leaseName(FencingHeaders.decode(leaseHeader.strip()));
        } catch (IllegalArgumentException e) {
            throw badRequest(
                    FencingHeaders.LEASE,
                    "malformed header " + FencingHeaders.LEASE + ": " + e.getMessage(),
                    null,
                    null);
        }
        if (!leases.isEmpty() && !leases.contains(lease)) {
            throw badRequest(
                    FencingHeaders.LEASE,
                    "lease " + Names.quote(lease) + " is not fenced by this endpoint" + " (it accepts "
                            + new TreeSet<>(leases) + ")",
                    lease,
                    null);
        }
        if (tokenHeader == null || tokenHeader.isBlank()) {
            throw badRequest(
                    FencingHeaders.TOKEN,
                    "missing header " + FencingHeaders.TOKEN + " (the fencing token "
                            + "of the sender's grant of lease " + Names.quote(lease) + ")",
                    lease,
                    null);
        }
        String raw = tokenHeader.strip();
        long token = -1;
        if (raw.length() <= 19 && raw.chars().allMatch(ch -> ch >= '0' && ch <= '9')) {
            try {
                token = Long.parseLong(raw);
            } catch (NumberFormatException e) {
                token = -1;
            }
        }
        if (token < 0) {
            String shown = raw.length() > 40 ? raw.substring(0, 40) + "..." : raw;
            throw badRequest(
                    FencingHeaders.TOKEN,
                    "malformed header " + FencingHeaders.TOKEN + ": "
                            + Names.quote(shown) + " is not a fencing token (a decimal number from 0 to "
                            + Long.MAX_VALUE + ")",
                    lease,
                    null);
        }
        return new Presented(lease, token);
    }

    private static Refused badRequest(String header, String error, String lease, Long token) {
        return new Refused(new Verdict(400, error, header, lease, token, null));
    }

    private static Verdict unavailable(SQLException e) {
        return new Verdict(
                503, "the fence's database is unavailable (SQLState " + e.getSQLState() + ")", null, null, null, null);
    }

    /**
     * What to answer a request: its HTTP {@code status}, and for a refusal the {@code error}, the {@code header}
     * at fault (400), the {@code lease} and {@code token} presented and the token the {@code fence} is at (409).
     */
    public record Verdict(int status, String error, String header, String lease, Long token, Long fence) {

        /** Whether the request was admitted (status 200). */
        public boolean admitted() {
            return status == 200;
        }

        /** The JSON body of the answer: the fields that are set, {@code null} ones left out. */
        public String json() {
            StringBuilder out = new StringBuilder("{");
            field(out, "error", error == null ? null : quote(error));
            field(out, "header", header == null ? null : quote(header));
            field(out, "lease", lease == null ? null : quote(lease));
            field(out, "token", token == null ? null : token.toString());
            field(out, "fence", fence == null ? null : fence.toString());
            return out.append('}').toString();
        }

        private static void field(StringBuilder out, String name, String value) {
            if (value == null) {
                return;
            }
            if (out.length() > 1) {
                out.append(',');
            }
            out.append('"').append(name).append("\":").append(value);
        }

        private static String quote(String s) {
            StringBuilder out = new StringBuilder(s.length() + 2).append('"');
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> out.append("\\\"");
                    case '\\' -> out.append("\\\\");
                    default -> {
                        if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) || Character.isSurrogate(c)) {
                            out.append(String.format("\\u%04x", (int) c));
                        } else {
                            out.append(c);
                        }
                    }
                }
            }
            return out.append('"').toString();
        }
    }

    /** An admitted request's verdict and what the work in its transaction returned. */
    public record Admitted<T>(Verdict verdict, T result) {}

    /** A refused request: answer it with {@link #verdict()}. */
    public static final class Refused extends RuntimeException {
        private static final long serialVersionUID = 1L;
        private final transient Verdict verdict;

        Refused(Verdict verdict) {
            super(verdict.status() + " " + verdict.json(), null, false, false);
            this.verdict = verdict;
        }

        public Verdict verdict() {
            return verdict;
        }
    }
}
