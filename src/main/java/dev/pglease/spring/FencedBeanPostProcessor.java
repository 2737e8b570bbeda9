package dev.pglease.spring;

import dev.pglease.FencingContext;
import java.lang.reflect.Method;
import java.util.ArrayDeque;
import java.util.Deque;
import org.aopalliance.intercept.MethodInterceptor;
import org.aopalliance.intercept.MethodInvocation;
import org.springframework.aop.Advisor;
import org.springframework.aop.framework.Advised;
import org.springframework.aop.framework.autoproxy.AbstractBeanFactoryAwareAdvisingPostProcessor;
import org.springframework.aop.support.AopUtils;
import org.springframework.aop.support.ComposablePointcut;
import org.springframework.aop.support.DefaultPointcutAdvisor;
import org.springframework.aop.support.annotation.AnnotationMatchingPointcut;
import org.springframework.beans.factory.BeanFactory;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.core.Ordered;
import org.springframework.transaction.annotation.AnnotationTransactionAttributeSource;
import org.springframework.transaction.interceptor.TransactionAttribute;
import org.springframework.transaction.interceptor.TransactionAttributeSource;

/**
 * Proxies beans with {@link Fenced} methods so each call runs in a fenced Spring transaction (see
 * {@link FencedTransactionTemplate}). {@link LeaderOnly} is checked first, so a method with both is skipped on
 * standbys and fences with the grant it runs under on the leader.
 *
 * <p>Two pieces of advice surround Spring's own transaction advice. The inner one runs right before the method body,
 * inside the transaction the method's own {@code @Transactional} attributes opened or joined (whatever their
 * propagation, isolation or transaction manager), and fences that transaction's connection; a method without
 * {@code @Transactional} gets a fenced transaction of the template instead. The outer one sees what the method's
 * transaction boundary threw, and reports a lease lost while the transaction ran as {@code LEASE_LOST}, as
 * {@link FencedTransactionTemplate#execute} does.
 */
class FencedBeanPostProcessor extends AbstractBeanFactoryAwareAdvisingPostProcessor {

    private static final long serialVersionUID = 1L;

    /** The calls of fenced methods in progress on this thread, innermost first. */
    private static final ThreadLocal<Deque<Call>> CALLS = ThreadLocal.withInitial(ArrayDeque::new);

    private transient Advisor inner;

    FencedBeanPostProcessor() {
        setBeforeExistingAdvisors(true);
        setOrder(Ordered.LOWEST_PRECEDENCE - 20); // before LeaderOnly's, whose advisor then goes in front
    }

    @Override
    public void setBeanFactory(BeanFactory beanFactory) {
        super.setBeanFactory(beanFactory);
        ObjectProvider<FencedTransactionTemplate> template =
                beanFactory.getBeanProvider(FencedTransactionTemplate.class);
        ObjectProvider<TransactionAttributeSource> attributes =
                beanFactory.getBeanProvider(TransactionAttributeSource.class);
        ComposablePointcut pointcut = new ComposablePointcut(new AnnotationMatchingPointcut(Fenced.class, true))
                .union(AnnotationMatchingPointcut.forMethodAnnotation(Fenced.class));
        this.advisor = new DefaultPointcutAdvisor(pointcut, new Boundary());
        this.inner = new DefaultPointcutAdvisor(pointcut, new Fence(template, attributes));
    }

    /**
     * Adds the outer advice in front of the existing ones (as configured) and the inner advice after every existing
     * one: inside the transaction advice that Spring's auto-proxy creator, which runs first, put on the bean.
     */
    @Override
    public Object postProcessAfterInitialization(Object bean, String beanName) {
        Object proxied = super.postProcessAfterInitialization(bean, beanName);
        if (proxied instanceof Advised advised && advised.indexOf(advisor) >= 0 && advised.indexOf(inner) < 0) {
            advised.addAdvisor(inner);
        }
        return proxied;
    }

    /** One call of a fenced method: what the inner advice fenced, for the outer one. */
    private static final class Call {
        final Method method;
        final Object target;
        FencedTransactionTemplate template;
        FencedTransactionTemplate.FencedBy fenced;

        Call(Method method, Object target) {
            this.method = method;
            this.target = target;
        }
    }

    /** The outer advice: reports what the method's own transaction boundary threw after its lease was lost. */
    private static final class Boundary implements MethodInterceptor {
        @Override
        public Object invoke(MethodInvocation invocation) throws Throwable {
            if (invocation.getMethod().getDeclaringClass() == Object.class) {
                return invocation.proceed();
            }
            Call call = new Call(invocation.getMethod(), invocation.getThis());
            Deque<Call> calls = CALLS.get();
            calls.push(call);
            try {
                return invocation.proceed();
            } catch (Throwable e) {
                if (call.fenced != null) {
                    throw call.template.boundaryOutcome(e, call.fenced);
                }
                throw e;
            } finally {
                calls.pop();
                if (calls.isEmpty()) {
                    CALLS.remove();
                }
            }
        }
    }

    /** The inner advice: fences the transaction the method body runs in, then runs the body. */
    private static final class Fence implements MethodInterceptor {
        private final ObjectProvider<FencedTransactionTemplate> template;
        private final ObjectProvider<TransactionAttributeSource> attributes;
        private volatile TransactionAttributeSource fallback;

        Fence(
                ObjectProvider<FencedTransactionTemplate> template,
                ObjectProvider<TransactionAttributeSource> attributes) {
            this.template = template;
            this.attributes = attributes;
        }

        @Override
        public Object invoke(MethodInvocation invocation) throws Throwable {
            Method method = invocation.getMethod();
            if (method.getDeclaringClass() == Object.class) {
                return invocation.proceed();
            }
            FencedTransactionTemplate t = template.getIfAvailable();
            if (t == null) {
                throw new IllegalStateException(method + " is @Fenced but the context has no "
                        + "FencedTransactionTemplate (it needs a PlatformTransactionManager and a LeaderElection)");
            }
            Class<?> targetClass = invocation.getThis() == null
                    ? method.getDeclaringClass()
                    : AopUtils.getTargetClass(invocation.getThis());
            TransactionAttribute attribute = attributes().getTransactionAttribute(method, targetClass);
            if (attribute == null) {
                return inTemplateTransaction(t, invocation); // no @Transactional of its own
            }
            FencedTransactionTemplate.FencedBy fenced =
                    t.fenceMethodTransaction(targetClass.getSimpleName() + "." + method.getName(), attribute);
            Call call = CALLS.get().peek();
            if (call != null && call.method.equals(method) && call.target == invocation.getThis()) {
                call.template = t;
                call.fenced = fenced;
            }
            try (FencingContext.Scope running = FencingContext.enter(fenced.grant())) {
                return invocation.proceed();
            }
        }

        private TransactionAttributeSource attributes() {
            TransactionAttributeSource source = attributes.getIfUnique();
            if (source != null) {
                return source;
            }
            if (fallback == null) {
                fallback = new AnnotationTransactionAttributeSource(false);
            }
            return fallback;
        }

        private static Object inTemplateTransaction(FencedTransactionTemplate t, MethodInvocation invocation)
                throws Throwable {
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
        }
    }

    /** Carries a checked exception of the method out of the transaction callback (which rolls back on it). */
    static final class CheckedException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        CheckedException(Throwable cause) {
            super(cause);
        }
    }
}
