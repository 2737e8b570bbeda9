package dev.pglease.spring;

import dev.pglease.FencingContext;
import dev.pglease.Leadership;
import dev.pglease.LeaseException;
import java.lang.reflect.Method;
import java.util.Optional;
import org.aopalliance.intercept.MethodInterceptor;
import org.aopalliance.intercept.MethodInvocation;
import org.springframework.aop.framework.autoproxy.AbstractBeanFactoryAwareAdvisingPostProcessor;
import org.springframework.aop.support.ComposablePointcut;
import org.springframework.aop.support.DefaultPointcutAdvisor;
import org.springframework.aop.support.annotation.AnnotationMatchingPointcut;
import org.springframework.beans.factory.BeanFactory;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.core.Ordered;

/**
 * Proxies beans with {@link LeaderOnly} methods (Spring AOP proxies, no AspectJ) so those methods run only while
 * the context's {@link LeaderElection} leads, with the grant they run under bound to the {@link FencingContext}.
 * Runs before Spring's {@code @Scheduled} processing, so scheduled methods are called through the proxy.
 */
public class LeaderOnlyBeanPostProcessor extends AbstractBeanFactoryAwareAdvisingPostProcessor {

    private static final long serialVersionUID = 1L;

    public LeaderOnlyBeanPostProcessor() {
        setBeforeExistingAdvisors(true);
        setOrder(Ordered.LOWEST_PRECEDENCE - 10);
    }

    /**
     * The innermost leadership the current thread runs under, such as a {@link LeaderOnly} method's, while it runs.
     *
     * @deprecated use {@link FencingContext#current()} (the grant the code runs under, whatever its kind) or
     *     {@code FencingContext.current(Leadership.class)}
     */
    @Deprecated
    public static Optional<Leadership> currentLeadership() {
        return FencingContext.current(Leadership.class);
    }

    @Override
    public void setBeanFactory(BeanFactory beanFactory) {
        super.setBeanFactory(beanFactory);
        ObjectProvider<LeaderElection> election = beanFactory.getBeanProvider(LeaderElection.class);
        ComposablePointcut pointcut = new ComposablePointcut(new AnnotationMatchingPointcut(LeaderOnly.class, true))
                .union(AnnotationMatchingPointcut.forMethodAnnotation(LeaderOnly.class));
        this.advisor = new DefaultPointcutAdvisor(pointcut, new Interceptor(election));
    }

    private static final class Interceptor implements MethodInterceptor {
        private final ObjectProvider<LeaderElection> election;

        Interceptor(ObjectProvider<LeaderElection> election) {
            this.election = election;
        }

        @Override
        public Object invoke(MethodInvocation invocation) throws Throwable {
            Method method = invocation.getMethod();
            if (method.getDeclaringClass() == Object.class) {
                return invocation.proceed();
            }
            LeaderElection e = election.getIfAvailable();
            Optional<Leadership> leadership = e == null ? Optional.empty() : e.beginWork();
            if (leadership.isEmpty()) {
                if (method.getReturnType() == void.class) {
                    return null;
                }
                if (method.getReturnType() == Optional.class) {
                    return Optional.empty();
                }
                throw new LeaseException(
                        LeaseException.Reason.LEASE_LOST,
                        method.getDeclaringClass().getSimpleName()
                                + "." + method.getName() + " is @LeaderOnly and this process does not lead "
                                + (e == null ? "(no LeaderElection bean)" : "lease " + e.leaseName()));
            }
            try (FencingContext.Scope running = FencingContext.enter(leadership.get())) {
                return invocation.proceed();
            } finally {
                e.endWork();
            }
        }
    }
}
