package dev.pglease.spring;

import dev.pglease.FencingContext;
import dev.pglease.Leadership;
import dev.pglease.LeaseException;
import java.lang.annotation.Annotation;
import java.lang.reflect.Method;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.aopalliance.intercept.MethodInterceptor;
import org.aopalliance.intercept.MethodInvocation;
import org.springframework.aop.ProxyMethodInvocation;
import org.springframework.aop.framework.autoproxy.AbstractBeanFactoryAwareAdvisingPostProcessor;
import org.springframework.aop.support.AopUtils;
import org.springframework.aop.support.DefaultPointcutAdvisor;
import org.springframework.aop.support.annotation.AnnotationMatchingPointcut;
import org.springframework.beans.factory.BeanFactory;
import org.springframework.beans.factory.ObjectProvider;
import org.springframework.core.Ordered;
import org.springframework.core.annotation.AnnotatedElementUtils;

/**
 * Proxies beans with {@link ShardOwner} methods (Spring AOP proxies, no AspectJ) so those methods run only for the
 * shards the context's {@link GroupMembership} of their group owns, each under its shard's grant, bound to the
 * {@link FencingContext}. Runs before Spring's {@code @Scheduled} processing, so scheduled methods are called
 * through the proxy.
 */
public class ShardOwnerBeanPostProcessor extends AbstractBeanFactoryAwareAdvisingPostProcessor {

    private static final long serialVersionUID = 1L;

    public ShardOwnerBeanPostProcessor() {
        setBeforeExistingAdvisors(true);
        setOrder(Ordered.LOWEST_PRECEDENCE - 10);
    }

    @Override
    public void setBeanFactory(BeanFactory beanFactory) {
        super.setBeanFactory(beanFactory);
        ObjectProvider<GroupMembership> groups = beanFactory.getBeanProvider(GroupMembership.class);
        this.advisor = new DefaultPointcutAdvisor(
                AnnotationMatchingPointcut.forMethodAnnotation(ShardOwner.class), new Interceptor(groups));
    }

    private static final class Interceptor implements MethodInterceptor {
        /** The index of the {@link Shard} parameter of each method, -1 for none. */
        private final Map<Method, Integer> shardParameters = new ConcurrentHashMap<>();

        private final ObjectProvider<GroupMembership> groups;

        Interceptor(ObjectProvider<GroupMembership> groups) {
            this.groups = groups;
        }

        @Override
        public Object invoke(MethodInvocation invocation) throws Throwable {
            Method method = invocation.getMethod();
            Method declared = invocation.getThis() == null
                    ? method
                    : AopUtils.getMostSpecificMethod(method, AopUtils.getTargetClass(invocation.getThis()));
            ShardOwner owner = AnnotatedElementUtils.findMergedAnnotation(declared, ShardOwner.class);
            if (owner == null) {
                return invocation.proceed();
            }
            GroupMembership group = group(owner.group(), declared);
            int index = shardParameters.computeIfAbsent(declared, Interceptor::shardParameter);
            if (index >= 0) {
                Object argument = invocation.getArguments()[index];
                if (!(argument instanceof Integer shard)) {
                    throw new IllegalArgumentException(name(declared) + ": the @Shard argument must be a shard number "
                            + "of group " + group.group() + " (0 to " + (group.shards() - 1) + "), got " + argument);
                }
                Optional<Leadership> grant = group.beginWork(shard);
                if (grant.isEmpty()) {
                    return skipped(declared, group, shard);
                }
                return run(group, shard, grant.get(), invocation);
            }
            if (declared.getReturnType() != void.class) {
                throw new IllegalStateException(name(declared) + " is @ShardOwner without a @Shard parameter, so it "
                        + "runs once per owned shard and must return void; give it a @Shard int parameter to run it "
                        + "for one shard");
            }
            if (!(invocation instanceof ProxyMethodInvocation proxied)) {
                throw new IllegalStateException(name(declared) + ": @ShardOwner needs a Spring AOP proxy");
            }
            for (int shard : group.workableShards()) {
                Optional<Leadership> grant = group.beginWork(shard);
                if (grant.isPresent()) {
                    run(group, shard, grant.get(), proxied.invocableClone());
                }
            }
            return null;
        }

        /** Runs one call of the rest of the chain under {@code grant}, counted as work on {@code shard}. */
        private static Object run(GroupMembership group, int shard, Leadership grant, MethodInvocation call)
                throws Throwable {
            try (FencingContext.Scope running = FencingContext.enter(grant)) {
                return GroupMembership.runFor(shard, call::proceed);
            } finally {
                group.endWork(shard);
            }
        }

        private static Object skipped(Method method, GroupMembership group, int shard) {
            if (method.getReturnType() == void.class) {
                return null;
            }
            if (method.getReturnType() == Optional.class) {
                return Optional.empty();
            }
            throw new LeaseException(
                    LeaseException.Reason.LEASE_LOST,
                    name(method) + " is @ShardOwner and this member does not own shard " + shard + " of group "
                            + group.group());
        }

        private GroupMembership group(String name, Method method) {
            List<GroupMembership> all = groups.orderedStream().toList();
            if (name.isEmpty()) {
                if (all.size() == 1) {
                    return all.get(0);
                }
                throw new IllegalStateException(name(method) + " is @ShardOwner without a group, and the context has "
                        + (all.isEmpty()
                                ? "no GroupMembership (set pglease.group.name and pglease.group.shards)"
                                : all.size() + " (groups "
                                        + all.stream()
                                                .map(GroupMembership::group)
                                                .toList()
                                        + "): name one with @ShardOwner(group = ...)"));
            }
            return all.stream()
                    .filter(g -> g.group().equals(name))
                    .findFirst()
                    .orElseThrow(() -> new IllegalStateException(name(method) + " is @ShardOwner(group = \"" + name
                            + "\"), but the context has no GroupMembership of that group (it has "
                            + all.stream().map(GroupMembership::group).toList()
                            + "; set pglease.group.name, or define a GroupMembership bean)"));
        }

        private static int shardParameter(Method method) {
            Annotation[][] annotations = method.getParameterAnnotations();
            int found = -1;
            for (int i = 0; i < annotations.length; i++) {
                for (Annotation a : annotations[i]) {
                    if (a.annotationType() == Shard.class) {
                        Class<?> type = method.getParameterTypes()[i];
                        if (found >= 0 || (type != int.class && type != Integer.class)) {
                            throw new IllegalStateException(name(method) + " must have at most one @Shard parameter, "
                                    + "of type int or Integer");
                        }
                        found = i;
                    }
                }
            }
            return found;
        }

        private static String name(Method method) {
            return method.getDeclaringClass().getSimpleName() + "." + method.getName();
        }
    }
}
