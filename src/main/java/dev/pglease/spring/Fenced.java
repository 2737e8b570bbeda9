package dev.pglease.spring;

import java.lang.annotation.Documented;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Marks a method (or every public method of a class) whose database writes must be fenced: the method runs in a
 * Spring transaction that is fenced right before the method body runs. Its {@code JdbcTemplate} (or other
 * Spring-managed) writes commit only if this process still holds the grant with the same token; otherwise the whole
 * transaction is rolled back and {@link dev.pglease.LeaseException} ({@code LEASE_LOST} or {@code STALE_TOKEN}) is
 * thrown, also when the lease was lost while the method ran (its connection aborted at the deadline, or ended by the
 * server while the process was paused).
 *
 * <p>Which transaction: with a {@code @Transactional} of its own (on the method or its class), the one its attributes
 * give the body (their propagation, isolation, timeout and transaction manager, as without {@code @Fenced}): the
 * caller's transaction it joins, or the new one it opens, is the one fenced, and its rollback rules apply. The
 * transaction manager must manage the {@code DataSource} pglease fences. A call that would run the body in no
 * transaction ({@code NOT_SUPPORTED}, {@code NEVER}, {@code SUPPORTS} without one), in a new read-only one, or in a
 * transaction of another data source is refused with {@link IllegalStateException} before the body runs. Without
 * {@code @Transactional}, the method joins the caller's transaction or opens one, as
 * {@link FencedTransactionTemplate#execute(org.springframework.transaction.support.TransactionCallback)} does, and any
 * exception it throws, checked or not, rolls the transaction back.
 *
 * <p>The grant that fences the transaction is the one the calling code runs under, if any: the grant of an
 * enclosing {@code @Fenced} method, the leadership of a {@link LeaderOnly} method, the lock of a ShedLock task
 * ({@code PgLeaseLockProvider}); otherwise the application's current leadership ({@link LeaderElection}; refused
 * with {@code LEASE_LOST} on a standby). Inside the method {@link dev.pglease.FencingContext#current()} returns
 * that grant; stamp its token on what you write, so that every row says which grant wrote it:
 * <pre>{@code
 * @Fenced
 * public void charge(int order) {
 *     long token = FencingContext.currentToken();
 *     jdbc.update("INSERT INTO charges (order_id, charged_by_token) VALUES (?, ?)", order, token);
 * }
 * }</pre>
 *
 * <p>Works through a Spring AOP proxy, like {@code @Transactional}: call the bean through Spring, not through
 * {@code this}. When the method joins a transaction opened by an outer {@code @Transactional} method, that outer
 * method's boundary ends the transaction: if the lease was lost, its rollback may fail on the aborted connection
 * and Spring throws {@code TransactionSystemException}, whose {@code getApplicationException()} is the
 * {@code LeaseException} ({@code e.contains(LeaseException.class)}). Make the fenced method the one that opens the
 * transaction to get the {@code LeaseException} itself.
 */
@Target({ElementType.METHOD, ElementType.TYPE})
@Retention(RetentionPolicy.RUNTIME)
@Documented
public @interface Fenced {}
