package dev.pglease.ha;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.SoftAssertions.assertSoftly;

import dev.pglease.LeaseConfig;
import dev.pglease.LeaseLock;
import dev.pglease.PgLease;
import dev.pglease.Required;
import dev.pglease.fault.kit.PgServer;
import dev.pglease.fault.kit.Schemas;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import javax.sql.DataSource;
import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Tokens stay unique and keep growing across the two events that give a server a timeline number it, or its
 * cluster, had before: a pg_upgrade (the new cluster starts on timeline 1) and a promotion that was undone by
 * pg_rewind and followed by another promotion to the same number. Real PostgreSQL 15 servers from the system
 * binaries; every grant is taken the way an application takes one ({@link PgLease#tryLock}) and checked against
 * the lease row. The rules: no token is granted twice, and every token granted after the event is greater than
 * every token granted before it on any history a client could have seen.
 */
class TermsSurviveUpgradeAndRewindTest {
    private static final String SCHEMA = "pglease";
    private static final String LEASE = "payments";
    private static final Duration LOCK_FOR = Duration.ofSeconds(30);
    private static final Duration REPLAY = Duration.ofSeconds(30);

    private Path base;
    private final List<PgServer> servers = new ArrayList<>();
    private final List<Grant> granted = new ArrayList<>();

    /**
     * A grant a client saw: the server, the step of the story, the token, the database's time of the grant
     * ({@code acquired_at}) and its time when the client read the lease row after the grant was committed.
     */
    private record Grant(String server, String step, long token, Instant at, Instant seen) {
        @Override
        public String toString() {
            return String.format(
                    "%-32s on %-8s token %d (high bits %d, low bits %d) at %s",
                    step, server, token, token >>> 32, token & 0xFFFFFFFFL, at);
        }
    }

    @BeforeEach
    void binaries() {
        Required.assume(PgServer.available(), "the system PostgreSQL 15 binaries (postgresql-15, run as postgres)");
        Required.assume(
                Files.isExecutable(PgServer.BIN.resolve("pg_upgrade"))
                        && Files.isExecutable(PgServer.BIN.resolve("pg_rewind")),
                "pg_upgrade and pg_rewind (postgresql-15)");
        base = PgServer.newBaseDir();
    }

    @AfterEach
    void stopServers() {
        for (int i = servers.size() - 1; i >= 0; i--) {
            servers.get(i).close();
        }
        if (base != null) {
            PgServer.deleteBase(base);
        }
        granted.forEach(System.out::println);
    }

    /**
     * Old cluster: primary A, then standby B promoted (timeline 2), then B's standby C promoted (timeline 3), with
     * grants on each. C is pg_upgraded into a new cluster N (new system identifier, timeline 1), grants go on, then N's
     * standby S is promoted (timeline 2 of the new cluster) while N, now a lost primary, keeps granting too.
     */
    @Test
    void afterAPgUpgradeNoTokenRepeatsAndEveryTokenIsAboveEveryTokenOfTheOldCluster() {
        PgServer a = keep(PgServer.init(base, "old-a", PgServer.defaults()));
        PgLease.migrate(Schemas.dataSource(a.jdbcUrl()), SCHEMA);
        grant(a, "old cluster, timeline 1", 2);

        PgServer b = keep(a.standby("old-b", Map.of()));
        b.awaitReplayOf(a, REPLAY);
        b.promote();
        assertThat(b.timeline()).as("B promoted").isEqualTo(2);
        a.close();
        grant(b, "old cluster, timeline 2", 2);

        PgServer c = keep(b.standby("old-c", Map.of()));
        c.awaitReplayOf(b, REPLAY);
        c.promote();
        assertThat(c.timeline()).as("C promoted").isEqualTo(3);
        b.close();
        grant(c, "old cluster, timeline 3", 3);
        long oldSystem = c.systemIdentifier();
        List<Grant> beforeUpgrade = List.copyOf(granted);

        c.stop();
        PgServer n = keep(c.upgrade("new-n", PgServer.defaults()));
        assertThat(n.systemIdentifier()).as("pg_upgrade made a new cluster").isNotEqualTo(oldSystem);
        assertThat(n.timeline())
                .as("the upgraded cluster starts over at timeline 1")
                .isEqualTo(1);
        PgLease.migrate(Schemas.dataSource(n.jdbcUrl()), SCHEMA); // as the application does at every start
        grant(n, "new cluster, timeline 1", 2);

        PgServer s = keep(n.standby("new-s", Map.of()));
        s.awaitReplayOf(n, REPLAY);
        s.promote();
        assertThat(s.timeline()).as("S promoted in the new cluster").isEqualTo(2);
        grant(s, "new cluster, timeline 2", 3);
        grant(n, "new cluster, lost primary", 3);
        List<Grant> afterUpgrade = granted.subList(beforeUpgrade.size(), granted.size());

        assertSoftly(soft -> {
            noTokenTwice(soft, granted);
            everyTokenAbove(soft, afterUpgrade, beforeUpgrade, "granted after the pg_upgrade");
        });
    }

    /**
     * Primary P and standby S: S is promoted (timeline 2) and grants, seen by clients, while P goes on granting; then
     * S is rewound onto P, which undoes its timeline 2 and leaves no 00000002.history behind, follows P as a standby
     * and is promoted again, to timeline 2 again. Its grants must be above every grant of the undone timeline 2 and
     * of P.
     *
     * <p>What the rule assumes, and this test gives it: the second promotion comes at least a second after the first
     * grant on the undone timeline, by the database clock (here 1.1 s at least after that grant was committed and
     * read back), as it does whenever a failover is detected, rewound and failed over again.
     */
    @Test
    void aPromotionToATimelineNumberThatARewindUndidGrantsTokensAboveEveryTokenOfTheUndoneTimeline()
            throws SQLException {
        Map<String, String> settings = new LinkedHashMap<>(PgServer.defaults());
        settings.put("wal_log_hints", "on"); // pg_rewind needs it (or checksums)
        settings.put("wal_keep_size", "'256MB'"); // P keeps the WAL the rewound S streams from it
        settings.put("unix_socket_directories", "'" + base + "'"); // pg_rewind fails on a socket in P's data directory
        PgServer p = keep(PgServer.init(base, "p", settings));
        PgLease.migrate(Schemas.dataSource(p.jdbcUrl()), SCHEMA);
        PgServer s = keep(p.standby("s", Map.of()));
        grant(p, "P, timeline 1", 3);

        s.awaitReplayOf(p, REPLAY);
        s.promote();
        assertThat(s.timeline()).as("S promoted").isEqualTo(2);
        List<Grant> undone = grant(s, "S, first timeline 2 (undone)", 3);
        grant(p, "P, while S was promoted", 3);

        s.stop();
        s.rewindOnto(p);
        Path history = s.dataDir().resolve("pg_wal/00000002.history");
        if (Files.exists(history)) {
            try {
                Files.delete(history); // the history file lost, as when the rewound server was rebuilt
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
            System.out.println("pg_rewind kept " + history + "; deleted to model a lost history file");
        } else {
            System.out.println("pg_rewind removed " + history);
        }
        s.start();
        grant(p, "P, after S was rewound", 2);
        s.awaitReplayOf(p, REPLAY);
        List<Grant> beforeSecondPromotion = List.copyOf(granted);

        awaitDatabaseClock(s, undone.get(0).seen().plusMillis(1100));
        s.promote();
        assertThat(s.timeline())
                .as("S promoted again, to the number the rewind undid")
                .isEqualTo(2);
        List<Grant> again = grant(s, "S, second timeline 2", 3);
        grant(p, "P, lost primary", 2);

        assertSoftly(soft -> {
            noTokenTwice(soft, granted);
            everyTokenAbove(soft, again, beforeSecondPromotion, "granted after the second promotion");
        });
    }

    private PgServer keep(PgServer server) {
        servers.add(server);
        return server;
    }

    /** Takes and releases the lease {@code times} times on {@code server}, as an application does. */
    private List<Grant> grant(PgServer server, String step, int times) {
        DataSource dataSource = Schemas.dataSource(server.jdbcUrl());
        List<Grant> made = new ArrayList<>();
        try (PgLease pglease =
                PgLease.create(dataSource, LeaseConfig.builder().schema(SCHEMA).build())) {
            for (int i = 0; i < times; i++) {
                try (LeaseLock lock = pglease.tryLock(LEASE, LOCK_FOR)
                        .orElseThrow(() -> new AssertionError(LEASE + " is held on " + server.name()))) {
                    made.add(readBack(dataSource, server, step, lock));
                }
            }
        }
        granted.addAll(made);
        return made;
    }

    /** The grant of a lock just taken, read back from its lease row, which must name the lock's holder and token. */
    private static Grant readBack(DataSource dataSource, PgServer server, String step, LeaseLock lock) {
        try (Connection c = dataSource.getConnection();
                PreparedStatement ps = c.prepareStatement("SELECT holder, token, acquired_at, clock_timestamp() FROM "
                        + SCHEMA + ".leases WHERE name = ?")) {
            ps.setString(1, lock.name());
            try (ResultSet rs = ps.executeQuery()) {
                assertThat(rs.next()).as("the lease row of " + lock).isTrue();
                assertThat(rs.getString(1)).as("holder in the lease row").isEqualTo(lock.holder());
                assertThat(rs.getLong(2)).as("token in the lease row").isEqualTo(lock.token());
                return new Grant(
                        server.name(),
                        step,
                        lock.token(),
                        rs.getTimestamp(3).toInstant(),
                        rs.getTimestamp(4).toInstant());
            }
        } catch (SQLException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Waits until the database clock of {@code server} has passed {@code instant}. */
    private static void awaitDatabaseClock(PgServer server, Instant instant) throws SQLException {
        try (Connection c = server.connect();
                PreparedStatement ps = c.prepareStatement("SELECT clock_timestamp() >= ?")) {
            ps.setObject(1, instant.atOffset(ZoneOffset.UTC));
            long until = Math.max(System.currentTimeMillis(), instant.toEpochMilli()) + 10_000;
            while (System.currentTimeMillis() < until) {
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    if (rs.getBoolean(1)) {
                        return;
                    }
                }
                PgServer.sleep(20);
            }
        }
        throw new IllegalStateException(server.name() + "'s clock did not reach " + instant);
    }

    private static void noTokenTwice(SoftAssertions soft, List<Grant> all) {
        Map<Long, List<Grant>> byToken =
                all.stream().collect(Collectors.groupingBy(Grant::token, LinkedHashMap::new, Collectors.toList()));
        List<String> twice = byToken.values().stream()
                .filter(g -> g.size() > 1)
                .map(g -> g.stream().map(Grant::toString).collect(Collectors.joining("\n  ", "\n  ", "")))
                .toList();
        soft.assertThat(twice)
                .as("tokens granted more than once, among %d grants", all.size())
                .isEmpty();
    }

    private static void everyTokenAbove(SoftAssertions soft, List<Grant> later, List<Grant> earlier, String what) {
        Grant highest =
                earlier.stream().max(Comparator.comparingLong(Grant::token)).orElseThrow();
        List<String> notAbove = later.stream()
                .filter(g -> g.token() <= highest.token())
                .map(Grant::toString)
                .toList();
        soft.assertThat(notAbove)
                .as("tokens %s that are not above the highest token before it,\n  %s", what, highest)
                .isEmpty();
    }
}
