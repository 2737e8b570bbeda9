package dev.pglease.fault;

/**
 * Every fault the kit can inject. In a group run, "leader" means a member that owns shards, and the members'
 * joins and leaves are faults too.
 */
public enum FaultKind {
    PAUSE_LEADER("pause leader (SIGSTOP > lease)"),
    PAUSE_NODE("pause node (SIGSTOP < lease)"),
    PAUSE_IN_FLIGHT("pause leader between request and reply"),
    KILL_LEADER("kill -9 leader"),
    STOP_LEADER("SIGTERM leader"),
    KILL_NODE("kill -9 standby"),
    PG_PAUSE("pause Postgres cluster"),
    PG_CRASH("crash Postgres (immediate)"),
    PG_RESTART("restart Postgres (fast)"),
    PROXY_BLACKHOLE("blackhole leader connection"),
    PROXY_LATENCY("latency > lease on leader connection"),
    PROXY_RESET("reset leader connection mid-statement"),
    NETNS_PARTITION("nft drop in leader's netns"),
    TICKER_FAST("ticker rate 2.0 on a node"),
    TICKER_SLOW("ticker rate 0.5 on a node"),
    WALL_CLOCK_SKEW("skewed wall clock on a node"),
    FAILOVER_SYNC("promote synchronous standby"),
    FAILOVER_ASYNC("promote asynchronous standby (negative control)"),
    CONTAINER_PAUSE("docker pause Postgres container"),
    HA_KILL_PRIMARY("kill -9 primary, HA manager fails over"),
    HA_PAUSE_PRIMARY("pause primary past the HA manager's timeout"),
    HA_SWITCHOVER("planned switchover by the HA manager"),
    STALL_IN_FENCED_TXN("pause leader inside a fenced transaction"),
    CONCURRENT_WRITERS("4 concurrent fenced writers on a node"),
    PG_TERMINATE("pg_terminate_backend of the leader's sessions"),
    RESET_AFTER_COMMIT("release, then reset a standby after its acquire committed"),
    SUSPEND_LEADER("suspend leader (monotonic clock stops, wall clock moves)"),
    DB_CLOCK_STEP("step the database server's clock, then step it back"),
    MEMBER_JOIN("a member joins the group (node started)"),
    MEMBER_LEAVE("a member leaves the group (SIGTERM)");

    private final String label;

    FaultKind(String label) {
        this.label = label;
    }

    public String label() {
        return label;
    }

    /**
     * Whether invariant 7 bounds the failover after this fault when it hits the leader: the leader is gone or
     * silent (dead, paused, cut off). A slow link is not a dead leader: a renew that arrives late is honoured and
     * extends the lease from its arrival, so failover times are reported but not bounded.
     */
    public boolean livenessBounded() {
        return switch (this) {
            case PAUSE_LEADER,
                    PAUSE_IN_FLIGHT,
                    KILL_LEADER,
                    STOP_LEADER,
                    PROXY_BLACKHOLE,
                    NETNS_PARTITION,
                    STALL_IN_FENCED_TXN,
                    RESET_AFTER_COMMIT,
                    SUSPEND_LEADER,
                    MEMBER_LEAVE -> true;
            default -> false;
        };
    }
}
