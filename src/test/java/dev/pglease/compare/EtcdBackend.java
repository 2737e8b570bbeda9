package dev.pglease.compare;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Client;
import io.etcd.jetcd.election.LeaderKey;
import io.etcd.jetcd.lease.LeaseKeepAliveResponse;
import io.etcd.jetcd.support.CloseableClient;
import io.grpc.stub.StreamObserver;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.CountDownLatch;
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

    @Override
    public void run() throws Exception {
        long ttl = Math.max(2, (c.leaseMs + 999) / 1000);
        while (!closing) {
            AtomicBoolean lost = new AtomicBoolean();
            CountDownLatch lostLatch = new CountDownLatch(1);
            CloseableClient keepAlive = null;
            try {
                leaseId = client.getLeaseClient().grant(ttl).get(c.leaseMs, TimeUnit.MILLISECONDS).getID();
                keepAlive = client.getLeaseClient().keepAlive(leaseId, new StreamObserver<>() {
                    @Override
                    public void onNext(LeaseKeepAliveResponse r) {
                        if (r.getTTL() <= 0) {
                            onCompleted();
                        }
                    }

                    @Override
                    public void onError(Throwable t) {
                        lost.set(true);
                        lostLatch.countDown();
                    }

                    @Override
                    public void onCompleted() {
                        lost.set(true);
                        lostLatch.countDown();
                    }
                });
                LeaderKey key = client.getElectionClient()
                        .campaign(election, leaseId, ByteSequence.from(c.holder, StandardCharsets.UTF_8))
                        .get().getLeader();
                if (lost.get() || closing) {
                    continue;
                }
                leaderKey = key;
                c.elected(key.getRevision(), () -> !lost.get());
                lostLatch.await();
                leaderKey = null;
                c.revoked("keep-alive lost");
            } catch (InterruptedException e) {
                return;
            } catch (Exception e) {
                System.err.println("etcd: " + e);
                c.revoked("error: " + e.getClass().getSimpleName());
                Candidate.sleep(c.retryMs);
            } finally {
                if (keepAlive != null) {
                    keepAlive.close();
                }
            }
        }
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
