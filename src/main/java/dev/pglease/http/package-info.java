/**
 * Fencing what leaves the database over HTTP: a request carries the lease and the fencing token it is sent under
 * in two headers ({@link dev.pglease.http.FencingHeaders}), and the receiving service admits it only if no request
 * with a higher token of that lease was admitted before ({@link dev.pglease.http.HttpFence}, backed by a
 * {@link dev.pglease.ForwardFence} table), refusing an older token with HTTP 409.
 *
 * <p>Client side: {@link dev.pglease.http.FencingHeaders#addTo} for {@code java.net.http}, and
 * {@link dev.pglease.http.FencingClientHttpRequestInterceptor} for Spring's {@code RestClient} and
 * {@code RestTemplate} (needs {@code spring-web}). Receiving side: {@link dev.pglease.http.FencingFilter}, a
 * {@code jakarta.servlet} filter (needs the Servlet API), and {@link dev.pglease.http.FencingHandlerInterceptor}
 * for Spring MVC (needs {@code spring-webmvc}); both call the same {@link dev.pglease.http.HttpFence}.
 */
package dev.pglease.http;
