package dev.pglease.http;

import dev.pglease.LeaseGrant;
import dev.pglease.internal.util.Names;
import java.net.http.HttpRequest;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * The header convention of fenced HTTP requests: {@value #LEASE} names the lease and {@value #TOKEN} carries the
 * fencing token (a decimal number), for example
 *
 * <pre>
 * Pglease-Lease: payments
 * Pglease-Token: 4294967313
 * </pre>
 *
 * <p>The lease name is sent as UTF-8 percent-encoded where it is not plain visible ASCII (a lease name may hold any
 * printable character), so {@code payments} stays {@code payments} and {@code zahlungen-ä} becomes
 * {@code zahlungen-%C3%A4}; the receiving side decodes it.
 */
public final class FencingHeaders {

    /** The header that names the lease. */
    public static final String LEASE = "Pglease-Lease";

    /** The header that carries the fencing token of the lease's grant the request is sent under. */
    public static final String TOKEN = "Pglease-Token";

    private FencingHeaders() {}

    /**
     * The two headers for a request sent under {@code grant}, after checking that the grant is still valid: no
     * request is started after its local deadline.
     *
     * @throws dev.pglease.LeaseException LEASE_LOST when the grant is no longer valid
     */
    public static Map<String, String> of(LeaseGrant grant) {
        Objects.requireNonNull(grant, "grant must not be null");
        grant.checkValid();
        return of(grant.leaseName(), grant.token());
    }

    /**
     * The two headers for {@code lease} and {@code token}, without any check: for code that checked its grant
     * itself just before.
     */
    public static Map<String, String> of(String lease, long token) {
        Names.leaseName(lease);
        if (token < 0) {
            throw new IllegalArgumentException("token must be 0 or more, got " + token);
        }
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put(LEASE, encode(lease));
        headers.put(TOKEN, Long.toString(token));
        return headers;
    }

    /**
     * Adds the headers of {@code grant} to a {@code java.net.http} request, after checking the grant is still valid.
     *
     * <pre>{@code
     * HttpRequest request = FencingHeaders.addTo(HttpRequest.newBuilder(uri), grant)
     *         .POST(HttpRequest.BodyPublishers.ofString(body))
     *         .build();
     * }</pre>
     *
     * @throws dev.pglease.LeaseException LEASE_LOST when the grant is no longer valid
     */
    public static HttpRequest.Builder addTo(HttpRequest.Builder request, LeaseGrant grant) {
        Objects.requireNonNull(request, "request must not be null");
        of(grant).forEach(request::setHeader);
        return request;
    }

    /** The lease name as sent: visible ASCII as is, everything else (and {@code %}) percent-encoded as UTF-8. */
    static String encode(String lease) {
        StringBuilder out = new StringBuilder(lease.length());
        for (byte b : lease.getBytes(java.nio.charset.StandardCharsets.UTF_8)) {
            int c = b & 0xff;
            if (c > 0x20 && c < 0x7f && c != '%') {
                out.append((char) c);
            } else {
                out.append('%')
                        .append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
                        .append(Character.toUpperCase(Character.forDigit(c & 0xf, 16)));
            }
        }
        return out.toString();
    }

    /**
     * The lease name of a received header.
     *
     * @throws IllegalArgumentException when the percent-encoding is broken or the bytes are not UTF-8
     */
    static String decode(String header) {
        if (header.indexOf('%') < 0) {
            return header;
        }
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream(header.length());
        for (int i = 0; i < header.length(); i++) {
            char c = header.charAt(i);
            if (c != '%') {
                if (c > 0x7f) {
                    throw new IllegalArgumentException("not percent-encoded");
                }
                bytes.write(c);
                continue;
            }
            if (i + 2 >= header.length()) {
                throw new IllegalArgumentException("a % must be followed by two hex digits");
            }
            int hi = Character.digit(header.charAt(i + 1), 16);
            int lo = Character.digit(header.charAt(i + 2), 16);
            if (hi < 0 || lo < 0) {
                throw new IllegalArgumentException("a % must be followed by two hex digits");
            }
            bytes.write(hi << 4 | lo);
            i += 2;
        }
        try {
            return java.nio.charset.StandardCharsets.UTF_8
                    .newDecoder()
                    .decode(java.nio.ByteBuffer.wrap(bytes.toByteArray()))
                    .toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new IllegalArgumentException("the percent-encoded bytes are not UTF-8");
        }
    }
}
