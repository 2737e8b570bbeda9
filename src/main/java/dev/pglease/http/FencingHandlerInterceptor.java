package dev.pglease.http;

import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.util.Objects;
import org.springframework.web.servlet.HandlerInterceptor;

/**
 * The Spring MVC form of {@link FencingFilter}: a handler interceptor that lets a request reach its handler only if
 * {@link HttpFence#admit} admits it (the verdict is left in the request attribute {@value HttpFence#ADMITTED}), and
 * otherwise answers 400, 409 or 503 with the verdict's JSON body. Register it for the endpoints that act:
 *
 * <pre>{@code
 * @Configuration
 * class FencedEndpoints implements WebMvcConfigurer {
 *     @Override
 *     public void addInterceptors(InterceptorRegistry registry) {
 *         registry.addInterceptor(new FencingHandlerInterceptor(new HttpFence(dataSource, fence)))
 *                 .addPathPatterns("/charges/**");
 *     }
 * }
 * }</pre>
 *
 * <p>Needs {@code spring-webmvc} at run time.
 */
public final class FencingHandlerInterceptor implements HandlerInterceptor {

    private final HttpFence fence;

    public FencingHandlerInterceptor(HttpFence fence) {
        this.fence = Objects.requireNonNull(fence, "fence must not be null");
    }

    @Override
    public boolean preHandle(HttpServletRequest request, HttpServletResponse response, Object handler)
            throws Exception {
        HttpFence.Verdict verdict =
                fence.admit(request.getHeader(FencingHeaders.LEASE), request.getHeader(FencingHeaders.TOKEN));
        if (!verdict.admitted()) {
            FencingFilter.refuse(response, verdict);
            return false;
        }
        request.setAttribute(HttpFence.ADMITTED, verdict);
        return true;
    }
}
