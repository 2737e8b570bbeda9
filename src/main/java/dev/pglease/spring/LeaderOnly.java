package dev.pglease.spring;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Marks a method (or every public method of a class) to run only while this process leads the application's lease
 * ({@link LeaderElection}). On other nodes the call is skipped: a {@code void} method returns at once, a method
 * returning {@code Optional} returns {@code Optional.empty()}, any other method throws a
 * {@link dev.pglease.LeaseException} with reason {@code LEASE_LOST}. The same happens while the application shuts
 * down: a run already under way may finish (for at most {@code pglease.election.drain-timeout}) before the lease is
 * released, new runs are refused. Typical use is on {@code @Scheduled} methods.
 * Works through a Spring AOP proxy (no AspectJ needed); the bean must be called through Spring, not {@code this}.
 *
 * <p>While the method runs, {@link dev.pglease.FencingContext#current()} gives the grant it runs under (the
 * leadership it was admitted with), to pass its fencing token on; a {@link Fenced} method it calls fences its
 * transaction with that grant.
 */
@Target({ElementType.METHOD, ElementType.TYPE})
@Retention(RetentionPolicy.RUNTIME)
@Documented
public @interface LeaderOnly {}
