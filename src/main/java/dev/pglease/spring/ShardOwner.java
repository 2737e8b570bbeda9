package dev.pglease.spring;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Marks a method to run only for the shards of a lease group that this member owns ({@link GroupMembership}), each
 * call under the shard's grant: {@link dev.pglease.FencingContext#current()} is the shard's {@code Leadership} while
 * it runs (a {@link Fenced} method it calls fences its transaction with it), and
 * {@link GroupMembership#currentShard()} is the shard.
 *
 * <ul>
 *   <li>A method with a parameter marked {@link Shard} runs for that shard, if this member owns it; otherwise a
 *       {@code void} method returns at once, a method returning {@code Optional} returns {@code Optional.empty()},
 *       and any other method throws a {@link dev.pglease.LeaseException} with reason {@code LEASE_LOST}.</li>
 *   <li>A {@code void} method without such a parameter (a {@code @Scheduled} job, say) runs once for each shard this
 *       member owns, one after the other, in shard order.</li>
 * </ul>
 *
 * <p>A call counts as the shard's work in flight: when the shard moves to another member, the move waits for it
 * (at most {@code pglease.group.drain-timeout}) before the shard is released, and no new call starts on that shard
 * meanwhile. Works through a Spring AOP proxy (no AspectJ needed); the bean must be called through Spring, not
 * {@code this}.
 */
@Target(ElementType.METHOD)
@Retention(RetentionPolicy.RUNTIME)
@Documented
public @interface ShardOwner {

    /**
     * The name of the group ({@code pglease.group.name}, or the group of a {@link GroupMembership} bean); empty when
     * the context has exactly one {@code GroupMembership}.
     */
    String group() default "";
}
