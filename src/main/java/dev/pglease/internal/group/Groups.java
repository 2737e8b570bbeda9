package dev.pglease.internal.group;

import dev.pglease.GroupListener;
import dev.pglease.LeaseConfig;
import dev.pglease.internal.election.Engine;
import dev.pglease.internal.sql.FastFailoverStatements;
import dev.pglease.internal.sql.GroupStatements;
import dev.pglease.internal.store.FastFailoverStore;
import java.sql.SQLException;
import javax.sql.DataSource;

/**
 * The lease groups of one {@code PgLease}, wired to its election engine: the {@link Memberships} installed on the
 * lease connection and the notification listener, and the thread that follows cooperative hand-overs (the listener's
 * {@code onRevoked} itself runs on the engine's callback threads, as every listener call).
 */
public final class Groups {

    private final Engine engine;
    private final DataSource dataSource;
    private final LeaseConfig config;
    private final String holder;
    private final GroupStatements sql;
    private final Memberships memberships;
    private final HandOvers handOvers;
    private final GroupEvents events;
    /** Fast failover: the waits for other members' locks; else null. */
    private final MemberWatch watch;

    public Groups(Engine engine, DataSource dataSource, LeaseConfig config, String holder) {
        this.engine = engine;
        this.dataSource = dataSource;
        this.config = config;
        this.holder = holder;
        this.sql = new GroupStatements(config.schema());
        this.memberships = new Memberships(
                sql,
                config.ticker(),
                engine.timings().leaseMillis(),
                false,
                config.fastFailover() ? new FastFailoverStatements(config.schema()) : null);
        FastFailoverStore fast = engine.fastFailover();
        this.watch = fast == null
                ? null
                : new MemberWatch() {
                    @Override
                    public void watch(String key, String lockName, java.util.function.Consumer<Boolean> onDone) {
                        fast.watchLock(
                                key, lockName, engine.timings().retryPeriod().toMillis(), onDone);
                    }

                    @Override
                    public void cancel(String key) {
                        fast.cancelWatch(key);
                    }
                };
        this.handOvers = new HandOvers();
        this.events = new GroupEvents(config.observer());
        engine.leaseConnectionHooks(memberships);
        engine.addNotificationReceiver(memberships);
    }

    /**
     * Joins {@code group} and starts following its assignment.
     *
     * @throws SQLException from the join (e.g. SQLSTATE 22023 when the live members have another number of shards)
     */
    public MemberEngine join(String group, int shards, int weight, int priority, GroupListener listener)
            throws SQLException {
        MemberEngine.Settings settings = new MemberEngine.Settings(group, shards, weight, priority, holder);
        MemberEngine member = new MemberEngine(
                settings,
                engine.timings(),
                dataSource,
                sql,
                new LoopShardCampaigns(engine.loop(), handOvers),
                memberships,
                engine::renewHooksAlone,
                listener,
                events,
                watch,
                config.ticker(),
                handOvers.executor());
        member.start();
        return member;
    }

    /** Stops the hand-over thread (after every group was closed). */
    public void close() {
        handOvers.close();
    }
}
