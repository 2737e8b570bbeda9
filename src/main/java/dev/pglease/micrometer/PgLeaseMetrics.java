package dev.pglease.micrometer;

import dev.pglease.Elector;
import dev.pglease.Leadership;
import dev.pglease.LeaseObserver;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * Micrometer meters for pglease, fed by the election loop as a {@link LeaseObserver} and by the electors bound
 * with {@link #bind(Elector)}. Every meter carries the tag {@code lease} (plus any common tags given here).
 *
 * <table>
 *   <caption>Meters</caption>
 *   <tr><th>name</th><th>type</th><th>meaning</th></tr>
 *   <tr><td>{@code pglease.leader}</td><td>gauge</td><td>1 while this process leads the lease, else 0 (bound electors)</td></tr>
 *   <tr><td>{@code pglease.token}</td><td>gauge</td><td>the fencing token of the current grant, or the last token seen</td></tr>
 *   <tr><td>{@code pglease.renew}</td><td>timer</td><td>round trip of successful renewals</td></tr>
 *   <tr><td>{@code pglease.renew.failures}</td><td>counter</td><td>failed renewals; tag {@code kind}: {@code lost} (the
 *       database said the lease is gone) or {@code error} (the statement failed)</td></tr>
 *   <tr><td>{@code pglease.stepdowns}</td><td>counter</td><td>times this process stopped leading</td></tr>
 *   <tr><td>{@code pglease.acquire.attempts}</td><td>counter</td><td>acquire statements; tag {@code result}: granted/denied</td></tr>
 *   <tr><td>{@code pglease.acquire.time}</td><td>timer</td><td>time to acquire: from the first attempt of a campaign
 *       (or from stepping down) until the lease was granted</td></tr>
 *   <tr><td>{@code pglease.releases}</td><td>counter</td><td>leases released in the database</td></tr>
 *   <tr><td>{@code pglease.database.errors}</td><td>counter</td><td>lease statements that failed</td></tr>
 *   <tr><td>{@code pglease.group.shards.owned}</td><td>gauge</td><td>shards of the group this member owns (tag
 *       {@code group})</td></tr>
 *   <tr><td>{@code pglease.group.moves}</td><td>counter</td><td>shards this member gained ({@code direction=in}),
 *       handed over cooperatively ({@code out}) or lost ({@code lost}: the grant ended); tag {@code group}</td></tr>
 *   <tr><td>{@code pglease.group.unowned}</td><td>timer</td><td>how long each shard this member took had no owner
 *       before (from the previous grant's release, or its expiry); tag {@code group}</td></tr>
 * </table>
 *
 * <p>The shards of a lease group are leases ({@code <group>/<shard>}); their lease meters are kept once per group,
 * with the tag {@code lease=<group>/*}, not once per shard.
 *
 * <pre>{@code
 * PgLeaseMetrics metrics = new PgLeaseMetrics(registry);
 * PgLease pglease = PgLease.create(dataSource, LeaseConfig.builder().observer(metrics).build());
 * Elector elector = metrics.bind(pglease.elector("payments", listener));
 * }</pre>
 *
 * <p>Observer calls come from the election thread; they only update meters and never block.
 */
public final class PgLeaseMetrics implements LeaseObserver {

    private final MeterRegistry registry;
    private final Tags tags;
    private final ConcurrentMap<String, LeaseMeters> leases = new ConcurrentHashMap<>();
    /** The lease groups joined, with their number of shards. */
    private final ConcurrentMap<String, Integer> groupShards = new ConcurrentHashMap<>();

    private final ConcurrentMap<String, GroupMeters> groups = new ConcurrentHashMap<>();

    public PgLeaseMetrics(MeterRegistry registry) {
        this(registry, Tags.empty());
    }

    /** @param tags common tags added to every pglease meter */
    public PgLeaseMetrics(MeterRegistry registry, Iterable<io.micrometer.core.instrument.Tag> tags) {
        this.registry = Objects.requireNonNull(registry, "registry must not be null");
        this.tags = Tags.of(Objects.requireNonNull(tags, "tags must not be null"));
    }

    /**
     * Registers the {@code pglease.leader} and {@code pglease.token} gauges for an elector (they
     * read 0 once it is closed). Returns the elector for chaining.
     */
    public Elector bind(Elector elector) {
        bind(elector.leaseName(), elector::leadership);
        return elector;
    }

    /**
     * Registers the {@code pglease.leader} and {@code pglease.token} gauges for a lease whose current grant the
     * supplier tells (for example {@code LeaderElection::leadership} in Spring). The supplier must be cheap: gauges
     * are read at every scrape.
     */
    public void bind(String leaseName, Supplier<Optional<Leadership>> leadership) {
        Objects.requireNonNull(leadership, "leadership must not be null");
        LeaseMeters m = meters(leaseName);
        Tags leaseTags = tags.and("lease", leaseName);
        Gauge.builder("pglease.leader", leadership, s -> s.get().isPresent() ? 1 : 0)
                .description("1 while this process leads the lease, else 0")
                .tags(leaseTags)
                .strongReference(true)
                .register(registry);
        Gauge.builder(
                        "pglease.token",
                        leadership,
                        s -> s.get().map(Leadership::token).orElse(m.lastToken))
                .description("fencing token of the current grant, or the last token seen for the lease")
                .tags(leaseTags)
                .strongReference(true)
                .register(registry);
    }

    @Override
    public void acquireAttempted(String leaseName, boolean granted, long token, Duration latency) {
        LeaseMeters m = meters(leaseName);
        long now = registry.config().clock().monotonicTime();
        if (token > 0) {
            m.lastToken = token;
        }
        if (granted) {
            m.granted.increment();
            long start = m.campaignStart != 0 ? m.campaignStart : now - latency.toNanos();
            m.acquireTime.record(Math.max(0, now - start), TimeUnit.NANOSECONDS);
            m.campaignStart = 0;
        } else {
            m.denied.increment();
            if (m.campaignStart == 0) {
                m.campaignStart = now - latency.toNanos();
            }
        }
    }

    @Override
    public void renewed(String leaseName, long token, Duration latency) {
        LeaseMeters m = meters(leaseName);
        m.lastToken = token;
        m.renew.record(latency);
    }

    @Override
    public void renewFailed(String leaseName, long token, boolean lost, Throwable cause) {
        LeaseMeters m = meters(leaseName);
        (lost ? m.renewLost : m.renewError).increment();
    }

    @Override
    public void steppedDown(String leaseName, long token, String reason) {
        LeaseMeters m = meters(leaseName);
        m.stepdowns.increment();
        m.campaignStart = registry.config().clock().monotonicTime();
    }

    @Override
    public void released(String leaseName, long token) {
        meters(leaseName).releases.increment();
    }

    @Override
    public void databaseError(String leaseName, Throwable cause) {
        meters(leaseName).databaseErrors.increment();
    }

    @Override
    public void groupJoined(String group, int shards) {
        groupShards.put(group, shards);
        group(group);
    }

    @Override
    public void shardAssigned(String group, int shard, long token) {
        GroupMeters g = group(group);
        g.owned.incrementAndGet();
        g.in.increment();
    }

    @Override
    public void shardRevoked(String group, int shard, long token, boolean handedOver) {
        GroupMeters g = group(group);
        g.owned.decrementAndGet();
        (handedOver ? g.out : g.lost).increment();
    }

    @Override
    public void shardUnowned(String group, int shard, long token, Duration unowned) {
        group(group).unowned.record(unowned);
    }

    private GroupMeters group(String group) {
        return groups.computeIfAbsent(group, name -> new GroupMeters(registry, tags.and("group", name)));
    }

    private LeaseMeters meters(String leaseName) {
        String key = groupOf(leaseName);
        return leases.computeIfAbsent(key, name -> new LeaseMeters(registry, tags.and("lease", name)));
    }

    /** {@code <group>/*} for a shard of a group joined, else the lease name itself. */
    private String groupOf(String leaseName) {
        int slash = leaseName.lastIndexOf('/');
        if (slash <= 0 || slash == leaseName.length() - 1 || groupShards.isEmpty()) {
            return leaseName;
        }
        Integer shards = groupShards.get(leaseName.substring(0, slash));
        if (shards == null) {
            return leaseName;
        }
        String suffix = leaseName.substring(slash + 1);
        if (suffix.length() > 6 || (suffix.length() > 1 && suffix.charAt(0) == '0')) {
            return leaseName;
        }
        for (int i = 0; i < suffix.length(); i++) {
            if (suffix.charAt(i) < '0' || suffix.charAt(i) > '9') {
                return leaseName;
            }
        }
        return Integer.parseInt(suffix) < shards ? leaseName.substring(0, slash) + "/*" : leaseName;
    }

    /** The meters of one lease group. */
    private static final class GroupMeters {
        final AtomicInteger owned = new AtomicInteger();
        final Counter in;
        final Counter out;
        final Counter lost;
        final Timer unowned;

        GroupMeters(MeterRegistry registry, Tags tags) {
            Gauge.builder("pglease.group.shards.owned", owned, AtomicInteger::get)
                    .description("shards of the group this member owns")
                    .tags(tags)
                    .strongReference(true)
                    .register(registry);
            in = Counter.builder("pglease.group.moves")
                    .description("shards this member gained (in), handed over (out) or lost (lost)")
                    .tags(tags)
                    .tag("direction", "in")
                    .register(registry);
            out = Counter.builder("pglease.group.moves")
                    .description("shards this member gained (in), handed over (out) or lost (lost)")
                    .tags(tags)
                    .tag("direction", "out")
                    .register(registry);
            lost = Counter.builder("pglease.group.moves")
                    .description("shards this member gained (in), handed over (out) or lost (lost)")
                    .tags(tags)
                    .tag("direction", "lost")
                    .register(registry);
            unowned = Timer.builder("pglease.group.unowned")
                    .description("how long each shard this member took had no owner before")
                    .tags(tags)
                    .register(registry);
        }
    }

    /** The meters of one lease. Written only by the election thread; read by gauges. */
    private static final class LeaseMeters {
        final Timer renew;
        final Counter renewLost;
        final Counter renewError;
        final Counter stepdowns;
        final Counter granted;
        final Counter denied;
        final Timer acquireTime;
        final Counter releases;
        final Counter databaseErrors;
        volatile long lastToken;
        volatile long campaignStart;

        LeaseMeters(MeterRegistry registry, Tags tags) {
            renew = Timer.builder("pglease.renew")
                    .description("round trip of successful lease renewals")
                    .tags(tags)
                    .register(registry);
            renewLost = Counter.builder("pglease.renew.failures")
                    .description("failed lease renewals")
                    .tags(tags)
                    .tag("kind", "lost")
                    .register(registry);
            renewError = Counter.builder("pglease.renew.failures")
                    .description("failed lease renewals")
                    .tags(tags)
                    .tag("kind", "error")
                    .register(registry);
            stepdowns = Counter.builder("pglease.stepdowns")
                    .description("times this process stopped leading")
                    .tags(tags)
                    .register(registry);
            granted = Counter.builder("pglease.acquire.attempts")
                    .description("lease acquire statements")
                    .tags(tags)
                    .tag("result", "granted")
                    .register(registry);
            denied = Counter.builder("pglease.acquire.attempts")
                    .description("lease acquire statements")
                    .tags(tags)
                    .tag("result", "denied")
                    .register(registry);
            acquireTime = Timer.builder("pglease.acquire.time")
                    .description("time from the first acquire attempt (or a step-down) until the lease was granted")
                    .tags(tags)
                    .register(registry);
            releases = Counter.builder("pglease.releases")
                    .description("leases released in the database")
                    .tags(tags)
                    .register(registry);
            databaseErrors = Counter.builder("pglease.database.errors")
                    .description("lease statements that failed")
                    .tags(tags)
                    .register(registry);
        }
    }
}
