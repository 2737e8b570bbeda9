package dev.pglease.http;

import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * A servlet filter that admits only fenced requests: each request it is mapped to must carry the headers of
 * {@link FencingHeaders}, and goes on to the servlet only if {@link HttpFence#admit} admits it (the verdict is left
 * in the request attribute {@value HttpFence#ADMITTED}); otherwise the filter answers 400, 409 or 503 with the
 * verdict's JSON body. Map it to the endpoints that act (not to reads):
 *
 * <pre>{@code
 * ForwardFence fence = new ForwardFence("provider.fence");   // created once with ForwardFence.createTable
 * servletContext.addFilter("pglease-fence", new FencingFilter(new HttpFence(dataSource, fence)))
 *         .addMappingForUrlPatterns(null, false, "/charges/*");
 * }</pre>
 *
 * <p>Needs the Jakarta Servlet API 6 at run time (tested with 6.1).
 */
public final class FencingFilter implements Filter {

    private final HttpFence fence;

    public FencingFilter(HttpFence fence) {
        this.fence = Objects.requireNonNull(fence, "fence must not be null");
    }

    @Override
    public void doFilter(ServletRequest request, ServletResponse response, FilterChain chain)
            throws IOException, ServletException {
        if (!(request instanceof HttpServletRequest http) || !(response instanceof HttpServletResponse answer)) {
            chain.doFilter(request, response);
            return;
        }
        HttpFence.Verdict verdict =
                fence.admit(http.getHeader(FencingHeaders.LEASE), http.getHeader(FencingHeaders.TOKEN));
        if (!verdict.admitted()) {
            refuse(answer, verdict);
            return;
        }
        request.setAttribute(HttpFence.ADMITTED, verdict);
        chain.doFilter(request, response);
    }

    /** Answers a refused request with the verdict's status and JSON body. */
    static void refuse(HttpServletResponse response, HttpFence.Verdict verdict) throws IOException {
        byte[] body = verdict.json().getBytes(StandardCharsets.UTF_8);
        response.setStatus(verdict.status());
        response.setContentType("application/json");
        response.setCharacterEncoding("UTF-8");
        response.setContentLength(body.length);
        response.getOutputStream().write(body);
    }
}
