package dev.pglease.cli;

import dev.pglease.GroupConfig;
import dev.pglease.GroupListener;
import dev.pglease.Leadership;
import dev.pglease.LeaseException;
import dev.pglease.LeaseGrant;
import dev.pglease.LeaseGroup;
import dev.pglease.PgLease;
import dev.pglease.internal.tool.JsonLines;
import dev.pglease.internal.util.Secrets;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * The node command's group mode ({@code --group NAME --shards N}): one member of a lease group, reporting the node
 * contract's events per shard ({@code lease} = the shard's lease name, plus {@code group} and {@code shard}), and with
 * {@code --work fenced-counter} incrementing each owned shard's counter in a transaction fenced by that shard's
 * grant. A planned move of a shard waits for the shard's write in flight, reports {@code released}, then lets the
 * shard go; SIGTERM hands every shard over that way and leaves the group.
 *
 * <p>Fault injection (negative control, the hidden {@code --ignore-deadline}): a member that ignores revocation keeps
 * writing each shard it was told it lost or handed over ({@code revoked}, {@code released}) with that old grant,
 * fenced only by the database, and past its local deadline.
 */
final class GroupNode {

    /**
     * What the member does besides owning shards: the node command's work options, and the fault switch
     * {@code ignoreRevocation} (keep writing with revoked grants, fenced only by the database).
     */
    record Work(
            boolean fencedCounter,
            String schema,
            int writers,
            Duration hold,
            Duration interval,
            boolean ignoreRevocation) {}

    private final JsonLines out;
    private final PgLease pglease;
    private final Deadlines deadlines;
    private final Work work;
    private final String group;
    private final int shards;
    /** Per shard: writers hold the read lock while they write it, a revocation takes the write lock. */
    private final ReentrantReadWriteLock[] inFlight;

    private final AtomicBoolean stopping = new AtomicBoolean();
    /** With {@code ignoreRevocation}: the last grant of each shard this member was told it no longer owns. */
    private final Map<Integer, Leadership> revoked = new ConcurrentHashMap<>();

    GroupNode(JsonLines out, PgLease pglease, Deadlines deadlines, Work work, String group, int shards) {
        this.out = out;
        this.pglease = pglease;
        this.deadlines = deadlines;
        this.work = work;
        this.group = group;
        this.shards = shards;
        this.inFlight = new ReentrantReadWriteLock[shards];
        for (int i = 0; i < shards; i++) {
            inFlight[i] = new ReentrantReadWriteLock();
        }
    }

    /** Runs until {@code stopped}, then hands every shard over and leaves. */
    void run(GroupConfig config, CountDownLatch stopped) throws InterruptedException {
        LeaseGroup member = pglease.group(group, shards, config, new Events());
        List<Thread> workers = new ArrayList<>();
        if (work.fencedCounter()) {
            for (int i = 0; i < work.writers(); i++) {
                Thread worker = new Thread(() -> write(member), "fenced-counter-" + i);
                worker.setDaemon(true);
                worker.start();
                workers.add(worker);
            }
        }
        stopped.await();
        stopping.set(true);
        member.close();
        for (Thread worker : workers) {
            worker.join(1_000);
        }
    }

    /** The node contract's events, per shard. */
    private final class Events implements GroupListener {
        @Override
        public void onAssigned(int shard, Leadership l) {
            revoked.remove(shard);
            Map<String, Object> e = event("elected", shard, l);
            e.put("deadline", out.wallMillis() + l.remaining().toMillis());
            out.emit(e);
        }

        @Override
        public void onRevoked(int shard, Leadership l) {
            boolean planned = l.isValid();
            ReentrantReadWriteLock.WriteLock drained = inFlight[shard].writeLock();
            drained.lock(); // the shard's write in flight, if any, has finished
            try {
                String reason = planned ? "handed over" : l.revocationReason();
                boolean released = planned || "released".equals(reason) || "closed".equals(reason);
                Map<String, Object> e = event(released ? "released" : "revoked", shard, l);
                e.put("reason", reason);
                out.emit(e);
                if (work.ignoreRevocation()) {
                    revoked.put(shard, l);
                }
            } finally {
                drained.unlock();
            }
        }

        private Map<String, Object> event(String name, int shard, Leadership l) {
            Map<String, Object> e = out.event(name);
            e.put("lease", l.leaseName());
            e.put("group", group);
            e.put("shard", shard);
            e.put("holder", l.holder());
            e.put("token", l.token());
            return e;
        }
    }

    /** One writer: every interval, one fenced increment per owned shard. */
    private void write(LeaseGroup member) {
        while (!stopping.get()) {
            for (int shard : member.ownedShards()) {
                if (stopping.get()) {
                    return;
                }
                ReentrantReadWriteLock.ReadLock writing = inFlight[shard].readLock();
                writing.lock();
                try {
                    member.leadership(shard).ifPresent(l -> writeOnce(shard, l, l));
                } finally {
                    writing.unlock();
                }
            }
            for (Map.Entry<Integer, Leadership> stale : revoked.entrySet()) {
                if (stopping.get()) {
                    return;
                }
                if (!member.ownedShards().contains(stale.getKey())) {
                    writeOnce(stale.getKey(), stale.getValue(), new DatabaseFenceOnly(stale.getValue()));
                }
            }
            try {
                TimeUnit.NANOSECONDS.sleep(work.interval().toNanos());
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    /**
     * One fenced increment of {@code shard}'s counter with {@code l}'s grant, through {@code fence}: the grant itself,
     * or (fault injection) a {@link DatabaseFenceOnly} view of it.
     */
    private void writeOnce(int shard, Leadership l, LeaseGrant fence) {
        String lease = l.leaseName();
        Map<String, Object> e = out.event("write");
        long startTick = deadlines.tick();
        e.put("lease", lease);
        e.put("group", group);
        e.put("shard", shard);
        e.put("holder", l.holder());
        e.put("token", l.token());
        e.put("start", e.get("t"));
        Long deadline = deadlines.wallDeadline(lease, l.token(), (long) e.get("t"), startTick);
        if (deadline != null) {
            e.put("deadline", deadline);
        }
        FencedCounter counter = new FencedCounter(work.schema(), lease, work.hold(), () -> {
            Map<String, Object> open = out.event("open");
            open.put("lease", lease);
            open.put("group", group);
            open.put("shard", shard);
            open.put("holder", l.holder());
            open.put("token", l.token());
            open.put("start", e.get("start"));
            open.put("until", (long) open.get("t") + work.hold().toMillis());
            out.emit(open);
        });
        try {
            long value = pglease.inFencedTransaction(fence, c -> counter.increment(c, l));
            e.put("result", "accepted");
            e.put("value", value);
        } catch (LeaseException ex) {
            e.put("result", "rejected");
            e.put("reason", ex.reason().name());
        } catch (SQLException | RuntimeException ex) {
            e.put("result", "error");
            e.put("reason", Secrets.redact(String.valueOf(ex.getMessage())));
        }
        e.put("t", out.wallMillis());
        out.emit(e);
    }

    /**
     * Fault injection: a grant that always claims to be valid locally, so that only the database's fence (this holder
     * with this token, unexpired) decides whether a write with it commits.
     */
    private record DatabaseFenceOnly(Leadership grant) implements LeaseGrant {
        @Override
        public String leaseName() {
            return grant.leaseName();
        }

        @Override
        public String holder() {
            return grant.holder();
        }

        @Override
        public long token() {
            return grant.token();
        }

        @Override
        public boolean isValid() {
            return true;
        }

        @Override
        public void checkValid() {}

        @Override
        public Duration remaining() {
            return Duration.ofSeconds(1);
        }
    }
}
