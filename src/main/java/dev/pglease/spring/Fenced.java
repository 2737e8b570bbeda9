package dev.pglease.spring;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Marks a method (or every public method of a class) whose database writes must be fenced by this application's
 * lease ({@link LeaderElection}): the method runs in a Spring transaction (the caller's {@code @Transactional} one,
 * or a new one) that is fenced with {@link FencedTransactionTemplate#fenceCurrentTransaction()} before the method
 * body runs. Its {@code JdbcTemplate} (or other Spring-managed) writes commit only if this process still holds the
 * lease with the same token; otherwise the whole transaction is rolled back and {@link dev.pglease.LeaseException}
 * ({@code LEASE_LOST} or {@code STALE_TOKEN}) is thrown. Any exception the method throws, checked or not, rolls
 * the transaction back. Works through a Spring AOP proxy, like
 * {@code @Transactional}: call the bean through Spring, not through {@code this}.
 */
@Target({ElementType.METHOD, ElementType.TYPE})
@Retention(RetentionPolicy.RUNTIME)
@Documented
public @interface Fenced {}
