package dev.pglease.http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.pglease.FencingContext;
import dev.pglease.ForwardFence;
import dev.pglease.LeaseConfig;
import dev.pglease.LeaseException;
import dev.pglease.LeaseGrant;
import dev.pglease.LeaseLock;
import dev.pglease.PgLease;
import dev.pglease.TestDatabase;
import dev.pglease.Ticker;
import dev.pglease.internal.election.Grant;
import jakarta.servlet.http.HttpServletRequest;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.sql.Connection;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.postgresql.ds.PGSimpleDataSource;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.EnableAutoConfiguration;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.boot.web.server.servlet.context.ServletWebServerApplicationContext;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.ConfigurableApplicationContext;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.client.RestClient;
import org.springframework.web.servlet.config.annotation.InterceptorRegistry;
import org.springframework.web.servlet.config.annotation.WebMvcConfigurer;

/**
 * Fenced HTTP requests over a real round trip: a receiving service (Spring Boot's embedded Tomcat) fences one
 * endpoint with the servlet filter and another with the Spring MVC interceptor, both backed by a forward fence
 * table; senders use {@code java.net.http} with {@link FencingHeaders} and Spring's {@code RestClient} with
 * {@link FencingClientHttpRequestInterceptor}.
 */
class HttpFencingTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final HttpClient HTTP =
            HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    private static final AtomicInteger HANDLED = new AtomicInteger();
    private static String schema;
    private static ConfigurableApplicationContext service;
    private static URI base;

    /** The receiving service: two fenced endpoints that echo what they were admitted with. */
    @Configuration(proxyBeanMethods = false)
    @EnableAutoConfiguration
    static class Service implements WebMvcConfigurer {

        static HttpFence fence() {
            return new HttpFence(TestDatabase.dataSource(), new ForwardFence(schema + ".fence"), Set.of());
        }

        @Override
        public void addInterceptors(InterceptorRegistry registry) {
            registry.addInterceptor(new FencingHandlerInterceptor(fence())).addPathPatterns("/interceptor/**");
        }

        @Bean
        FilterRegistrationBean<FencingFilter> fencingFilter() {
            FilterRegistrationBean<FencingFilter> filter = new FilterRegistrationBean<>(new FencingFilter(fence()));
            filter.addUrlPatterns("/filter/*");
            return filter;
        }

        @Bean
        Charges charges() {
            return new Charges();
        }
    }

    @RestController
    static class Charges {
        @PostMapping({"/interceptor/charges", "/filter/charges"})
        String charge(HttpServletRequest request) {
            HANDLED.incrementAndGet();
            HttpFence.Verdict admitted = (HttpFence.Verdict) request.getAttribute(HttpFence.ADMITTED);
            return admitted.json();
        }
    }

    @BeforeAll
    static void start() throws Exception {
        schema = TestDatabase.freshSchema();
        try (Connection c = TestDatabase.dataSource().getConnection()) {
            ForwardFence.createTable(c, schema + ".fence");
        }
        service = new SpringApplicationBuilder(Service.class)
                .web(WebApplicationType.SERVLET)
                .run(
                        "--server.port=0",
                        "--server.address=127.0.0.1",
                        "--pglease.enabled=false",
                        "--spring.autoconfigure.exclude="
                                + "org.springframework.boot.jdbc.autoconfigure.DataSourceAutoConfiguration",
                        "--spring.main.banner-mode=off");
        int port = ((ServletWebServerApplicationContext) service).getWebServer().getPort();
        base = URI.create("http://127.0.0.1:" + port);
    }

    @AfterAll
    static void stop() {
        if (service != null) {
            service.close();
        }
    }

    static Stream<String> endpoints() {
        return Stream.of("/interceptor/charges", "/filter/charges");
    }

    private static Grant grant(String lease, long token, Duration valid) {
        return new Grant(lease, "sender", token, Ticker.SYSTEM, System.nanoTime() + valid.toNanos());
    }

    private record Answer(int status, JsonNode json) {}

    private static Answer post(String path, Map<String, String> headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(base.resolve(path)).POST(HttpRequest.BodyPublishers.noBody());
        headers.forEach(b::header);
        HttpResponse<String> r = HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
        return new Answer(r.statusCode(), JSON.readTree(r.body()));
    }

    @ParameterizedTest
    @MethodSource("endpoints")
    void aRequestWithAnOlderTokenIsRefusedWith409NamingLeaseTokenAndFence(String endpoint) throws Exception {
        String lease = "payments" + endpoint.replace('/', '-');
        LeaseGrant current = grant(lease, 4294967313L, Duration.ofMinutes(1));
        HttpResponse<String> first = HTTP.send(
                FencingHeaders.addTo(HttpRequest.newBuilder(base.resolve(endpoint)), current)
                        .POST(HttpRequest.BodyPublishers.noBody())
                        .build(),
                HttpResponse.BodyHandlers.ofString());
        assertThat(first.statusCode()).as(first.body()).isEqualTo(200);
        assertThat(JSON.readTree(first.body()).path("token").asLong()).isEqualTo(4294967313L);

        Answer successor = post(endpoint, FencingHeaders.of(lease, 4294967314L));
        assertThat(successor.status()).isEqualTo(200);
        int handled = HANDLED.get();

        Answer stale = post(endpoint, FencingHeaders.of(lease, 4294967313L));
        assertThat(stale.status()).isEqualTo(409);
        assertThat(stale.json().path("error").asText()).isEqualTo("stale fencing token");
        assertThat(stale.json().path("lease").asText()).isEqualTo(lease);
        assertThat(stale.json().path("token").asLong()).isEqualTo(4294967313L);
        assertThat(stale.json().path("fence").asLong()).isEqualTo(4294967314L);
        assertThat(HANDLED.get())
                .as("the refused request never reached the handler")
                .isEqualTo(handled);

        assertThat(post(endpoint, FencingHeaders.of(lease, 4294967314L)).status())
                .as("the same token again")
                .isEqualTo(200);
        assertThat(Service.fence().current(lease)).hasValue(4294967314L);
    }

    @ParameterizedTest
    @MethodSource("endpoints")
    void aMissingOrMalformedHeaderIsRefusedWith400NamingTheHeader(String endpoint) throws Exception {
        Map<Map<String, String>, String> cases = Map.of(
                Map.of(), FencingHeaders.LEASE,
                Map.of(FencingHeaders.TOKEN, "7"), FencingHeaders.LEASE,
                Map.of(FencingHeaders.LEASE, "payments"), FencingHeaders.TOKEN,
                Map.of(FencingHeaders.LEASE, "payments", FencingHeaders.TOKEN, "seven"), FencingHeaders.TOKEN,
                Map.of(FencingHeaders.LEASE, "payments", FencingHeaders.TOKEN, "-1"), FencingHeaders.TOKEN,
                Map.of(FencingHeaders.LEASE, "payments", FencingHeaders.TOKEN, "+7"), FencingHeaders.TOKEN,
                Map.of(FencingHeaders.LEASE, "payments", FencingHeaders.TOKEN, "99999999999999999999"),
                        FencingHeaders.TOKEN,
                Map.of(FencingHeaders.LEASE, "pay%zzments", FencingHeaders.TOKEN, "7"), FencingHeaders.LEASE);
        int handled = HANDLED.get();
        for (Map.Entry<Map<String, String>, String> c : cases.entrySet()) {
            Answer a = post(endpoint, c.getKey());
            assertThat(a.status()).as("headers %s: %s", c.getKey(), a.json()).isEqualTo(400);
            assertThat(a.json().path("header").asText())
                    .as("headers %s", c.getKey())
                    .isEqualTo(c.getValue());
            assertThat(a.json().path("error").asText()).contains(c.getValue());
        }
        assertThat(HANDLED.get()).isEqualTo(handled);
    }

    @Test
    void aFenceForGivenLeasesRefusesAnotherLeaseWith400() {
        HttpFence onlyPayments =
                new HttpFence(TestDatabase.dataSource(), new ForwardFence(schema + ".fence"), Set.of("payments-only"));
        HttpFence.Verdict other = onlyPayments.admit("reports", "7");
        assertThat(other.status()).isEqualTo(400);
        assertThat(other.json())
                .contains("\"header\":\"Pglease-Lease\"", "not fenced by this endpoint", "payments-only");
        assertThat(onlyPayments.admit("payments-only", "7").admitted()).isTrue();
    }

    @Test
    void aLeaseNameOutsideVisibleAsciiTravelsPercentEncoded() throws Exception {
        String lease = "zahlungen ä \"eu\"";
        Map<String, String> headers = FencingHeaders.of(lease, 3);
        assertThat(headers.get(FencingHeaders.LEASE)).isEqualTo("zahlungen%20%C3%A4%20\"eu\"");
        Answer a = post("/filter/charges", headers);
        assertThat(a.status()).isEqualTo(200);
        assertThat(a.json().path("lease").asText()).isEqualTo(lease);
    }

    @Test
    void theRestClientInterceptorSendsTheGrantTheCodeRunsUnderAndNothingAfterItsDeadline() throws Exception {
        RestClient client = RestClient.builder()
                .baseUrl(base.toString())
                .requestInterceptor(new FencingClientHttpRequestInterceptor())
                .build();
        LeaseGrant leader = grant("reports", 12, Duration.ofMinutes(1));
        try (FencingContext.Scope running = FencingContext.enter(leader)) {
            String body = client.post().uri("/interceptor/charges").retrieve().body(String.class);
            assertThat(JSON.readTree(body).path("lease").asText()).isEqualTo("reports");
            assertThat(JSON.readTree(body).path("token").asLong()).isEqualTo(12);
        }
        int handled = HANDLED.get();
        assertThat(catchThrowable(() ->
                        client.post().uri("/interceptor/charges").retrieve().toBodilessEntity()))
                .as("outside any grant")
                .isInstanceOf(IllegalStateException.class)
                .hasMessageContaining("under no pglease grant");
        LeaseGrant expired = grant("reports", 13, Duration.ofNanos(-1));
        RestClient underExpired = RestClient.builder()
                .baseUrl(base.toString())
                .requestInterceptor(new FencingClientHttpRequestInterceptor(() -> Optional.of(expired)))
                .build();
        Throwable lost = catchThrowable(
                () -> underExpired.post().uri("/interceptor/charges").retrieve().toBodilessEntity());
        assertThat(lost).isInstanceOf(LeaseException.class);
        assertThat(((LeaseException) lost).reason()).isEqualTo(LeaseException.Reason.LEASE_LOST);
        assertThat(catchThrowable(() -> FencingHeaders.addTo(HttpRequest.newBuilder(base), expired)))
                .isInstanceOf(LeaseException.class);
        assertThat(HANDLED.get()).as("no request was sent after a deadline").isEqualTo(handled);
        assertThat(Service.fence().current("reports")).hasValue(12);
    }

    /**
     * The schema's fence knows the grants: it admits only the token of the lease's current grant, and refuses a
     * token the lease never granted and the token of an earlier grant.
     */
    @Test
    void onTheSchemasFenceOnlyTheCurrentGrantsTokenIsAdmitted() throws Exception {
        try (PgLease pglease = PgLease.create(
                TestDatabase.dataSource(), LeaseConfig.builder().schema(schema).build())) {
            HttpFence fence = new HttpFence(TestDatabase.dataSource(), pglease.forwardFence(), Set.of());
            LeaseLock first =
                    pglease.tryLock("http-granted", Duration.ofMinutes(1)).orElseThrow();
            HttpFence.Verdict forged = fence.admit("http-granted", Long.toString(first.token() + 1));
            assertThat(forged.status()).as(forged.json()).isEqualTo(409);
            assertThat(forged.error()).isEqualTo("token not granted by the lease");
            assertThat(fence.admit("http-granted", Long.toString(first.token())).admitted())
                    .isTrue();
            first.close();
            LeaseLock second =
                    pglease.tryLock("http-granted", Duration.ofMinutes(1)).orElseThrow();
            assertThat(fence.admit("http-granted", Long.toString(second.token()))
                            .admitted())
                    .isTrue();
            HttpFence.Verdict older = fence.admit("http-granted", Long.toString(first.token()));
            assertThat(older.status()).as(older.json()).isEqualTo(409);
            assertThat(older.error()).isEqualTo("stale fencing token");
            assertThat(older.fence()).isEqualTo(second.token());
            assertThat(fence.admit("http-granted", "0").error())
                    .as("no lease grants token 0")
                    .isEqualTo("token not granted by the lease");
            second.close();
        }
    }

    @Test
    void anUnreachableFenceDatabaseIsA503() {
        PGSimpleDataSource nowhere = new PGSimpleDataSource();
        nowhere.setServerNames(new String[] {"127.0.0.1"});
        nowhere.setPortNumbers(new int[] {1}); // nothing listens there
        nowhere.setConnectTimeout(2);
        HttpFence down = new HttpFence(nowhere, new ForwardFence(schema + ".fence"), Set.of());
        HttpFence.Verdict v = down.admit("payments", "1");
        assertThat(v.status()).as(v.json()).isEqualTo(503);
        assertThat(v.json()).contains("unavailable");
    }
}
