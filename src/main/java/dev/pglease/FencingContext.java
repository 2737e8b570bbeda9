package dev.pglease;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Iterator;
import java.util.Objects;
import java.util.Optional;

/**
 * The grant the current code runs under, for code that must stamp or pass on its fencing token without having the
 * grant handed to it: a Spring {@code @LeaderOnly} method's leadership, a ShedLock task's lock (taken through
 * {@code PgLeaseLockProvider}), the grant a Spring {@code @Fenced} method or {@code FencedTransactionTemplate}
 * fenced its transaction with. The integrations bind it while such code runs; the innermost binding wins.
 *
 * <pre>{@code
 * long token = FencingContext.current().orElseThrow().token();   // e.g. to stamp charged_by_token
 * }</pre>
 *
 * <p>A binding belongs to the thread that made it: work handed to another thread does not see it (pass the grant
 * along). Code that runs work under a grant of its own may bind it with {@link #enter(LeaseGrant)}.
 */
public final class FencingContext {

    private static final ThreadLocal<Deque<LeaseGrant>> GRANTS = new ThreadLocal<>();

    private FencingContext() {}

    /** The innermost grant the current thread runs under, if any. */
    public static Optional<LeaseGrant> current() {
        Deque<LeaseGrant> grants = GRANTS.get();
        if (grants == null) {
            return Optional.empty();
        }
        synchronized (grants) {
            return Optional.ofNullable(grants.peekLast());
        }
    }

    /**
     * The innermost grant of the given kind the current thread runs under, if any: {@code current(LeaseLock.class)}
     * for a ShedLock task's lock even inside a {@code @LeaderOnly} method it calls.
     */
    public static <G extends LeaseGrant> Optional<G> current(Class<G> kind) {
        Objects.requireNonNull(kind, "kind must not be null");
        Deque<LeaseGrant> grants = GRANTS.get();
        if (grants == null) {
            return Optional.empty();
        }
        synchronized (grants) {
            for (Iterator<LeaseGrant> it = grants.descendingIterator(); it.hasNext(); ) {
                LeaseGrant g = it.next();
                if (kind.isInstance(g)) {
                    return Optional.of(kind.cast(g));
                }
            }
        }
        return Optional.empty();
    }

    /**
     * The fencing token of {@link #current()}.
     *
     * @throws IllegalStateException when the current thread runs under no grant
     */
    public static long currentToken() {
        return current()
                .orElseThrow(() -> new IllegalStateException("the current thread runs under no pglease "
                        + "grant (no @LeaderOnly method, ShedLock task or @Fenced method is running on it)"))
                .token();
    }

    /**
     * Binds {@code grant} to the current thread until the returned scope is closed: {@link #current()} returns it
     * meanwhile (unless an inner binding is made). Close the scope on the thread that opened it, in a
     * {@code finally} block or try-with-resources; scopes may be closed out of order.
     */
    public static Scope enter(LeaseGrant grant) {
        Objects.requireNonNull(grant, "grant must not be null");
        Deque<LeaseGrant> grants = GRANTS.get();
        if (grants == null) {
            grants = new ArrayDeque<>();
            GRANTS.set(grants);
        }
        synchronized (grants) {
            grants.addLast(grant);
        }
        return new Scope(grants, grant, Thread.currentThread());
    }

    /** One binding of a grant; closing it removes that binding (idempotent). */
    public static final class Scope implements AutoCloseable {
        private final Deque<LeaseGrant> grants;
        private final LeaseGrant grant;
        private final Thread owner;
        private boolean closed;

        private Scope(Deque<LeaseGrant> grants, LeaseGrant grant, Thread owner) {
            this.grants = grants;
            this.grant = grant;
            this.owner = owner;
        }

        /** The bound grant. */
        public LeaseGrant grant() {
            return grant;
        }

        @Override
        public void close() {
            synchronized (grants) {
                if (closed) {
                    return;
                }
                closed = true;
                for (Iterator<LeaseGrant> it = grants.descendingIterator(); it.hasNext(); ) {
                    if (it.next() == grant) {
                        it.remove();
                        break;
                    }
                }
                if (grants.isEmpty() && Thread.currentThread() == owner && GRANTS.get() == grants) {
                    GRANTS.remove();
                }
            }
        }
    }
}
