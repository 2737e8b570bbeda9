package dev.pglease.compare;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.data.Stat;

/**
 * ZooKeeper through Curator's {@link LeaderLatch}. Session timeout = {@code lease-ms}; Curator's default error
 * policy treats a SUSPENDED connection as lost leadership. Token: the czxid (creation transaction id) of the
 * leader's own latch node. The latch leader is the lowest sequence node alive, and every node is created after
 * all earlier ones, so the leader's czxid only grows (across ZooKeeper leader elections too: the epoch is in
 * the high bits).
 */
final class ZkBackend implements Candidate.Backend {
    private final Candidate c;
    private final CuratorFramework client;
    private final LeaderLatch latch;

    ZkBackend(Candidate c) {
        this.c = c;
        int session = (int) c.leaseMs;
        this.client = CuratorFrameworkFactory.builder()
                .connectString(c.args.get("store"))
                .sessionTimeoutMs(session)
                .connectionTimeoutMs(Math.max(1000, session / 2))
                .retryPolicy(new ExponentialBackoffRetry(100, 10, (int) c.retryMs))
                .build();
        this.latch = new LeaderLatch(client, "/compare/" + c.lease, c.holder, LeaderLatch.CloseMode.SILENT);
    }

    @Override
    public void run() throws Exception {
        latch.addListener(new LeaderLatchListener() {
            @Override
            public void isLeader() {
                long token;
                try {
                    Stat s = client.checkExists().forPath(latch.getOurPath());
                    if (s == null) {
                        return;
                    }
                    token = s.getCzxid();
                } catch (Exception e) {
                    System.err.println("zookeeper: " + e);
                    return;
                }
                c.elected(token, latch::hasLeadership);
            }

            @Override
            public void notLeader() {
                c.revoked("latch lost leadership");
            }
        });
        client.start();
        latch.start();
        Thread.currentThread().join();
    }

    @Override
    public void shutdown() throws Exception {
        latch.close();
        client.close();
    }
}
