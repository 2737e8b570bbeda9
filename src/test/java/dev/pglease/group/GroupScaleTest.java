package dev.pglease.group;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.pglease.bench.BenchDatabase;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Lease groups at scale, members in this JVM against one PostgreSQL on the same machine ({@code ./mvnw -Ptargets
 * -Dtest=GroupScaleTest test}; each report is printed and written to {@code target/group-scale/}): 1,024 shards
 * over 32 members at the 1 s / 600 ms / 200 ms timings, and the ceiling, 10,000 shards over 100 members at the
 * default timings (10 s / 6 s / 2 s). Any other size and timings can be tried with
 * {@code -Dtest='GroupScaleTest#aGroupOfTheSizeGivenOnTheCommandLineHolds' -Dpglease.groupScale=SHARDSxMEMBERS@LEASE/DEADLINE/RETRY}
 * (milliseconds, for example {@code 10000x100@1000/600/200}).
 *
 * <p>A group holds when it balances within the limit, each member sends one renewal statement per retry period,
 * every shard stays held through the steady-state window, and a join balances it again within the limit, moving
 * at most the newcomer's share, all to the newcomer.
 */
@Tag("targets")
class GroupScaleTest {

    static final String SIZE_PROPERTY = "pglease.groupScale";
    private static final Pattern SIZE = Pattern.compile("(\\d+)x(\\d+)@(\\d+)/(\\d+)/(\\d+)");

    private static BenchDatabase db;

    @BeforeAll
    static void start() {
        db = BenchDatabase.start();
    }

    @AfterAll
    static void stop() {
        if (db != null) {
            db.close();
        }
    }

    private static void keep(String name, GroupScaleRun.Result r) throws Exception {
        Path out = Path.of(System.getProperty("pglease.buildDirectory", "target"), "group-scale", name + ".txt");
        Files.createDirectories(out.getParent());
        Files.writeString(out, r.report());
    }

    private static void assertHolds(GroupScaleRun.Result r) {
        assertThat(db.statementsAvailable())
                .as("pg_stat_statements is loaded: the renewals are counted by the server")
                .isTrue();
        assertThat(r.settledMs()).as("balanced within the limit\n" + r.report()).isNotNegative();
        assertThat(r.renewalsPerMemberPerRetryPeriod())
                .as("group_renew per member per retry period\n" + r.report())
                .isBetween(0.8, 1.2);
        assertThat(r.window().incomplete())
                .as("samples with a shard not held\n" + r.report())
                .isZero();
        assertThat(r.joinMs())
                .as("balanced again after one join\n" + r.report())
                .isNotNegative();
        assertThat(r.moved()).as(r.report()).isLessThanOrEqualTo(r.joinLimit());
        assertThat(r.movedElsewhere())
                .as("shards moved between the old members\n" + r.report())
                .isZero();
    }

    @Test
    void thousandTwentyFourShardsOverThirtyTwoMembersRenewOncePerMemberPerRetryPeriodAndRebalanceStickily()
            throws Exception {
        GroupScale.Settings s = new GroupScale.Settings(
                1024, 32, Duration.ofMillis(1000), Duration.ofMillis(600), Duration.ofMillis(200));
        GroupScaleRun.Result r = GroupScaleRun.run(db, s, Duration.ofSeconds(20), 120_000);
        keep("1024-shards-32-members", r);
        assertHolds(r);
    }

    @Test
    void tenThousandShardsOverAHundredMembersHoldAtTheDefaultTimings() throws Exception {
        GroupScale.Settings s = new GroupScale.Settings(
                10_000, 100, Duration.ofSeconds(10), Duration.ofSeconds(6), Duration.ofSeconds(2));
        GroupScaleRun.Result r = GroupScaleRun.run(db, s, Duration.ofSeconds(30), 300_000);
        keep("10000-shards-100-members-default-timings", r);
        assertHolds(r);
    }

    @Test
    void aGroupOfTheSizeGivenOnTheCommandLineHolds() throws Exception {
        String given = System.getProperty(SIZE_PROPERTY);
        assumeTrue(
                given != null && !given.isBlank(),
                "no size given: run with -D" + SIZE_PROPERTY + "=SHARDSxMEMBERS@LEASE/DEADLINE/RETRY (ms)");
        Matcher m = SIZE.matcher(given.trim());
        assertThat(m.matches())
                .as(SIZE_PROPERTY + "=" + given + ": expected SHARDSxMEMBERS@LEASE/DEADLINE/RETRY in ms, for example "
                        + "10000x100@1000/600/200")
                .isTrue();
        GroupScale.Settings s = new GroupScale.Settings(
                Integer.parseInt(m.group(1)),
                Integer.parseInt(m.group(2)),
                Duration.ofMillis(Long.parseLong(m.group(3))),
                Duration.ofMillis(Long.parseLong(m.group(4))),
                Duration.ofMillis(Long.parseLong(m.group(5))));
        GroupScaleRun.Result r = GroupScaleRun.run(db, s, Duration.ofSeconds(30), 180_000);
        keep(
                s.shards() + "-shards-" + s.members() + "-members-"
                        + s.leaseDuration().toMillis() + "ms",
                r);
        assertHolds(r);
    }
}
