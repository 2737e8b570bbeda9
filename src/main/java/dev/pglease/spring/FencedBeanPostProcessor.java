package dev.pglease.spring;

import org.aopalliance.intercept.MethodInterceptor;
import org.springframework.aop.framework.autoproxy.AbstractBeanFactoryAwareAdvisingPostProcessor;
import org.springframework.aop.support.ComposablePointcut;
import org.springframework.aop.support.DefaultPointcutAdvisor;
import org.springframework.aop.support.annotation.AnnotationMatchingPointcut;
import org.springframework.beans.factory.BeanFactory;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.core.Ordered;

/**
 * Proxies beans with {@link Fenced} methods so each call runs in a fenced Spring transaction (see
 * {@link FencedTransactionTemplate}). {@link LeaderOnly} is checked first, so a method with both is skipped on
 * standbys and fences with the grant it runs under on the leader.
 */
class FencedBeanPostProcessor extends AbstractBeanFactoryAwareAdvisingPostProcessor {

    private static final long serialVersionUID = 1L;

    FencedBeanPostProcessor() {
        setBeforeExistingAdvisors(true);
        setOrder(Ordered.LOWEST_PRECEDENCE - 20); // before LeaderOnly's, whose advisor then goes in front
    }

    @Override
    public void setBeanFactory(BeanFactory beanFactory) {
        super.setBeanFactory(beanFactory);
        ObjectProvider<FencedTransactionTemplate> template =
                beanFactory.getBeanProvider(FencedTransactionTemplate.class);
        ComposablePointcut pointcut = new ComposablePointcut(new AnnotationMatchingPointcut(Fenced.class, true))
                .union(AnnotationMatchingPointcut.forMethodAnnotation(Fenced.class));
        MethodInterceptor interceptor = invocation -> {
            if (invocation.getMethod().getDeclaringClass() == Object.class) {
                return invocation.proceed();
            }
            FencedTransactionTemplate t = template.getIfAvailable();
            if (t == null) {
                throw new IllegalStateException(invocation.getMethod() + " is @Fenced but the context has no "
                        + "FencedTransactionTemplate (it needs a PlatformTransactionManager and a LeaderElection)");
            }
            try {
                return t.execute(status -> {
                    try {
                        return invocation.proceed();
                    } catch (RuntimeException | Error e) {
                        throw e;
                    } catch (Throwable e) {
                        throw new CheckedException(e);
                    }
                });
            } catch (CheckedException e) {
                throw e.getCause();
            }
        };
        this.advisor = new DefaultPointcutAdvisor(pointcut, interceptor);
    }

    /** Carries a checked exception of the method out of the transaction callback (which rolls back on it). */
    static final class CheckedException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        CheckedException(Throwable cause) {
            super(cause);
        }
    }
}
