package dev.pglease.internal.election;

import dev.pglease.LeaseException;
import dev.pglease.internal.store.LeaseStore;
import dev.pglease.internal.util.Names;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Predicate;

/**
 * The live locks ({@code LeaseLock}) of one process, which the election loop checks against the database: every
 * lock check period, and soon after a notification names one. A lock the database no longer lists with its holder
 * and token (force released, handed off, expired) is told it is lost, so its validity ends. One name is held at
 * most once: a second lock of a name this process holds is refused before any statement is sent. When the
 * {@code PgLease} closes, every live lock ends and is given back ({@link #closeAll}); no lock is taken after that.
 */
public final class LiveLocks {

    /** A lock's entry; {@link #release()} ends the checks (after an unlock, or once the lock is no longer valid). */
    final class Held {
        final String name;
        final String holder;
        final long token;
        final Consumer<String> onLost;
        final Consumer<String> onClosed;

        private Held(String name, String holder, long token, Consumer<String> onLost, Consumer<String> onClosed) {
            this.name = name;
            this.holder = holder;
            this.token = token;
            this.onLost = onLost;
            this.onClosed = onClosed;
        }

        void release() {
            synchronized (guard) {
                held.remove(name, this);
                marked.remove(name);
            }
        }
    }

    /** The election loop's lock: elector and lock names are checked against each other under it. */
    private final Object guard;

    private final Predicate<String> electorExists;
    private final Runnable wakeLoop;
    private final Map<String, Held> held = new HashMap<>();
    private final Set<String> reserved = new HashSet<>();
    private final Set<String> marked = new HashSet<>();
    /** Tokens of locks unlocked but kept in the database until their lockAtLeastFor, by name. */
    private final Map<String, Long> kept = new HashMap<>();
    /** Set once by {@link #closeAll}: no lock is reserved or held after that. */
    private boolean closed;

    LiveLocks(Object guard, Predicate<String> electorExists, Runnable wakeLoop) {
        this.guard = guard;
        this.electorExists = electorExists;
        this.wakeLoop = wakeLoop;
    }

    /**
     * Claims {@code name} for a lock about to be taken; false when this process holds or is taking it already.
     *
     * @throws IllegalStateException when this process has an elector for {@code name}
     * @throws LeaseException         CLOSED after {@link #closeAll}
     */
    public boolean reserve(String name) {
        synchronized (guard) {
            if (closed) {
                throw new LeaseException(LeaseException.Reason.CLOSED, "this PgLease is closed");
            }
            if (electorExists.test(name)) {
                throw new IllegalStateException("this PgLease has an elector for lease " + Names.quote(name)
                        + ": an elector and a lock must not share a name");
            }
            return !held.containsKey(name) && reserved.add(name);
        }
    }

    /** Gives up a claim whose lock was not granted. */
    public void unreserve(String name) {
        synchronized (guard) {
            reserved.remove(name);
        }
    }

    /**
     * Turns the claim on {@code name} into a live lock held by {@code holder} with {@code token}: {@code onLost} is
     * told why when the database no longer lists it (never on the caller's thread), {@code onClosed} why when the
     * {@code PgLease} closes while it is held (it then ends the lock and gives it back). Run the returned action once
     * the lock is unlocked. Returns {@code null}, holding nothing, when the {@code PgLease} closed meanwhile.
     */
    public Runnable hold(String name, String holder, long token, Consumer<String> onLost, Consumer<String> onClosed) {
        Held h = new Held(name, holder, token, onLost, onClosed);
        synchronized (guard) {
            reserved.remove(name);
            kept.remove(name);
            if (closed) {
                return null;
            }
            held.put(name, h);
        }
        wakeLoop.run();
        return h::release;
    }

    /**
     * The {@code PgLease} closes: every live lock is told so (it ends and is given back, on the caller's thread), and
     * no lock is reserved or held from now on.
     */
    public void closeAll() {
        List<Held> open;
        synchronized (guard) {
            closed = true;
            open = List.copyOf(held.values());
            held.clear();
            marked.clear();
        }
        for (Held h : open) {
            h.onClosed.accept("its PgLease was closed");
        }
    }

    /**
     * The lock {@code name} with {@code token} is being unlocked but kept in the database until its
     * {@code lockAtLeastFor}: a take that finds it listed for this process's lock holder leaves it alone.
     */
    public void keep(String name, long token) {
        synchronized (guard) {
            kept.put(name, token);
        }
    }

    /**
     * Whether the database listing this process's lock holder for {@code name} with {@code token} is a lock this
     * process knows of: live, or unlocked and kept until its {@code lockAtLeastFor}. Otherwise it is a grant whose
     * answer was lost (the take committed, its answer did not arrive), which nobody acts on.
     */
    public boolean knows(String name, long token) {
        synchronized (guard) {
            Held h = held.get(name);
            Long k = kept.get(name);
            return (h != null && h.token == token) || (k != null && k == token);
        }
    }

    /** Whether this process holds, or is taking, a lock named {@code name}. */
    boolean holds(String name) {
        synchronized (guard) {
            return held.containsKey(name) || reserved.contains(name);
        }
    }

    boolean isEmpty() {
        synchronized (guard) {
            return held.isEmpty();
        }
    }

    /** A notification named {@code name}: returns true when that marks a live lock for a re-read. */
    boolean notice(String name) {
        synchronized (guard) {
            return held.containsKey(name) && marked.add(name);
        }
    }

    /** Marks every live lock for a re-read (notifications came back: one may have been missed). */
    void markAll() {
        synchronized (guard) {
            marked.addAll(held.keySet());
        }
    }

    boolean anyMarked() {
        synchronized (guard) {
            return !marked.isEmpty();
        }
    }

    /** Adds the names to re-read (the marked ones, or every live lock) to {@code out} and clears the marks. */
    void takeNames(boolean all, Collection<String> out) {
        synchronized (guard) {
            out.addAll(all ? held.keySet() : marked);
            marked.clear();
        }
    }

    /** The lease rows read for {@code asked}: every live lock among them that they no longer list is lost. */
    void apply(Collection<String> asked, Map<String, LeaseStore.Fact> facts) {
        List<Runnable> lost = new ArrayList<>();
        synchronized (guard) {
            for (String name : asked) {
                Held h = held.get(name);
                if (h == null) {
                    continue;
                }
                LeaseStore.Fact f = facts.get(name);
                if (f == null || !f.held() || !h.holder.equals(f.holder()) || f.token() != h.token) {
                    held.remove(name, h);
                    String reason = "the database no longer lists lock " + Names.quote(name) + " with token " + h.token
                            + " (" + describe(f) + ")";
                    lost.add(() -> h.onLost.accept(reason));
                }
            }
        }
        lost.forEach(Runnable::run);
    }

    /** A fence with {@code token} of lock {@code name} was refused: the lock is lost. Returns whether one was. */
    boolean lost(String name, long token, String reason) {
        Held h;
        synchronized (guard) {
            h = held.get(name);
            if (h == null || h.token != token) {
                return false;
            }
            held.remove(name, h);
        }
        h.onLost.accept(reason);
        return true;
    }

    private static String describe(LeaseStore.Fact f) {
        if (f == null) {
            return "no such lease";
        } else if (f.holder() == null) {
            return "released, now token " + f.token() + ": force released or handed off";
        } else if (!f.held()) {
            return "expired, token " + f.token();
        }
        return "held by " + f.holder() + " with token " + f.token();
    }
}
