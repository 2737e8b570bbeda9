package dev.pglease.compare;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Client;
import io.etcd.jetcd.election.LeaderKey;
import io.etcd.jetcd.lease.LeaseKeepAliveResponse;
import io.etcd.jetcd.support.CloseableClient;
import io.grpc.stub.StreamObserver;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * etcd through jetcd's election API. A lease of {@code lease-ms} (rounded up to whole seconds, etcd's unit; the
 * minimum etcd accepts is 2 s) is kept alive by jetcd's keep-alive stream; the candidate campaigns with it.
 * Token: the revision at which the leader key was created ({@link LeaderKey#getRevision()}), which grows with
 * every new leader. Leadership ends when the keep-alive stream reports an error or completes (jetcd reports an
 * expired or revoked lease that way).
 */
final class EtcdBackend implements Candidate.Backend {
    private final Candidate c;
    private final Client client;
    private final ByteSequence election;
    private volatile LeaderKey leaderKey;
    private volatile long leaseId;
    private volatile boolean closing;

    EtcdBackend(Candidate c) {
        this.c = c;
        this.client = Client.builder().endpoints(c.args.get("store").split(",")).build();
        this.election = ByteSequence.from("/compare/" + c.lease, StandardCharsets.UTF_8);
    }

    /** Keep-alive state of one lease. */
    private final class KeepAliveState implements StreamObserver<LeaseKeepAliveResponse> {
        final AtomicBoolean lost = new AtomicBoolean();
        final AtomicBoolean broken = new AtomicBoolean();
        final java.util.concurrent.Semaphore changed = new java.util.concurrent.Semaphore(0);
        volatile long lastOk = System.currentTimeMillis();

        @Override
        public void onNext(LeaseKeepAliveResponse r) {
            if (r.getTTL() <= 0) {
                lost.set(true);
                changed.release();
            } else {
                lastOk = System.currentTimeMillis();
            }
        }

        @Override
        public void onError(Throwable t) {
            broken.set(true);
            changed.release();
        }

        @Override
        public void onCompleted() {
            broken.set(true);
            changed.release();
        }
    }

    @Override
    public void run() throws Exception {
        long ttl = Math.max(2, (c.leaseMs + 999) / 1000);
        while (!closing) {
            KeepAliveState state = new KeepAliveState();
            CloseableClient keepAlive = null;
            try {
                leaseId = client.getLeaseClient()
                        .grant(ttl)
                        .get(c.leaseMs, TimeUnit.MILLISECONDS)
                        .getID();
                state.lastOk = System.currentTimeMillis();
                keepAlive = client.getLeaseClient().keepAlive(leaseId, state);
                LeaderKey key = client.getElectionClient()
                        .campaign(election, leaseId, ByteSequence.from(c.holder, StandardCharsets.UTF_8))
                        .get()
                        .getLeader();
                if (state.lost.get() || closing) {
                    continue;
                }
                leaderKey = key;
                c.elected(key.getRevision(), () -> !state.lost.get());
                keepAlive = holdUntilLost(state, keepAlive, ttl * 1000);
                leaderKey = null;
                c.revoked("lease lost");
            } catch (InterruptedException e) {
                return;
            } catch (Exception e) {
                System.err.println("etcd: " + e);
                c.revoked("error: " + e.getClass().getSimpleName());
                if (leaseId != 0) {
                    // best effort: a key left on the old lease would queue ahead of the next campaign
                    client.getLeaseClient().revoke(leaseId);
                }
                Candidate.sleep(c.retryMs);
            } finally {
                if (keepAlive != null) {
                    keepAlive.close();
                }
            }
        }
    }

    /**
     * Like the Go client's concurrency.Session: a broken keep-alive stream is not yet a lost lease. The
     * candidate retries a single keep-alive every retry period and opens a new stream once one succeeds; the
     * lease counts as lost when the server says so (TTL 0) or when no keep-alive has succeeded for a whole TTL.
     */
    private CloseableClient holdUntilLost(KeepAliveState state, CloseableClient keepAlive, long ttlMs)
            throws InterruptedException {
        CloseableClient current = keepAlive;
        while (!state.lost.get() && !closing) {
            if (state.changed.tryAcquire(c.retryMs, TimeUnit.MILLISECONDS)) {
                state.changed.drainPermits();
            }
            if (state.broken.get() && !state.lost.get()) {
                try {
                    long r = client.getLeaseClient()
                            .keepAliveOnce(leaseId)
                            .get(c.retryMs, TimeUnit.MILLISECONDS)
                            .getTTL();
                    if (r > 0) {
                        state.lastOk = System.currentTimeMillis();
                        state.broken.set(false);
                        current.close();
                        current = client.getLeaseClient().keepAlive(leaseId, state);
                    } else {
                        state.lost.set(true);
                    }
                } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
                    System.err.println("etcd keep-alive retry: " + e);
                }
            }
            if (System.currentTimeMillis() - state.lastOk > ttlMs) {
                state.lost.set(true);
            }
        }
        return current;
    }

    @Override
    public void shutdown() throws Exception {
        closing = true;
        LeaderKey key = leaderKey;
        System.err.println(System.currentTimeMillis() + " shutdown: resign " + (key != null));
        if (key != null) {
            client.getElectionClient().resign(key).get(2, TimeUnit.SECONDS);
        }
        System.err.println(System.currentTimeMillis() + " shutdown: revoke");
        if (leaseId != 0) {
            client.getLeaseClient().revoke(leaseId).get(2, TimeUnit.SECONDS);
        }
        System.err.println(System.currentTimeMillis() + " shutdown: close");
        client.close();
    }
}
