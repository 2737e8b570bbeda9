package dev.pglease.http;

import dev.pglease.FencingContext;
import dev.pglease.LeaseGrant;
import java.io.IOException;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Supplier;
import org.springframework.http.HttpRequest;
import org.springframework.http.client.ClientHttpRequestExecution;
import org.springframework.http.client.ClientHttpRequestInterceptor;
import org.springframework.http.client.ClientHttpResponse;

/**
 * Adds the {@link FencingHeaders} of a grant to every request of a Spring {@code RestClient} or
 * {@code RestTemplate}, after checking that the grant is still valid (a request is never started after its local
 * deadline: {@link dev.pglease.LeaseException} {@code LEASE_LOST} instead). By default the grant is the one the
 * calling code runs under ({@link FencingContext#current()}: a {@code @LeaderOnly} or {@code @Fenced} method's, a
 * ShedLock task's lock):
 *
 * <pre>{@code
 * RestClient provider = RestClient.builder()
 *         .baseUrl("https://provider.example")
 *         .requestInterceptor(new FencingClientHttpRequestInterceptor())
 *         .build();
 * }</pre>
 *
 * <p>Needs {@code spring-web} at run time.
 */
public final class FencingClientHttpRequestInterceptor implements ClientHttpRequestInterceptor {

    private final Supplier<Optional<? extends LeaseGrant>> grant;

    /** Sends the grant the calling code runs under; refuses a request sent under none. */
    public FencingClientHttpRequestInterceptor() {
        this(FencingContext::current);
    }

    /** Sends the grant {@code grant} supplies at each request; refuses a request when it supplies none. */
    public FencingClientHttpRequestInterceptor(Supplier<Optional<? extends LeaseGrant>> grant) {
        this.grant = Objects.requireNonNull(grant, "grant must not be null");
    }

    @Override
    public ClientHttpResponse intercept(HttpRequest request, byte[] body, ClientHttpRequestExecution execution)
            throws IOException {
        LeaseGrant sentUnder = grant.get()
                .orElseThrow(() -> new IllegalStateException("a fenced request to " + request.getURI() + " is sent "
                        + "under no pglease grant (call it from a @LeaderOnly or @Fenced method or a ShedLock task, "
                        + "or give the interceptor a grant supplier)"));
        FencingHeaders.of(sentUnder).forEach(request.getHeaders()::set);
        return execution.execute(request, body);
    }
}
