package dev.pglease.ha;

import static org.assertj.core.api.Assertions.assertThat;

import dev.pglease.fault.CheckReport;
import dev.pglease.fault.FaultKind;
import dev.pglease.fault.LostGrants;
import dev.pglease.fault.Op;
import dev.pglease.fault.kit.FaultCluster;
import dev.pglease.fault.kit.PgServer;
import java.util.List;
import java.util.Locale;

/**
 * One failover of a PostgreSQL cluster run by an HA manager (any {@link HaCluster}), with three pglease candidates
 * (the node command, a fenced counter as their work) connected through a multi-host JDBC URL with
 * {@code targetServerType=primary}, and the fault kit's checker over the whole history.
 */
final class HaRun {
    /** The faults a run can inject on the primary. */
    enum Fault {
        KILL(FaultKind.HA_KILL_PRIMARY, "kill -9 primary"),
        PAUSE(FaultKind.HA_PAUSE_PRIMARY, "pause primary 15 s"),
        SWITCHOVER(FaultKind.HA_SWITCHOVER, "planned switchover");

        final FaultKind kind;
        final String label;

        Fault(FaultKind kind, String label) {
            this.kind = kind;
            this.label = label;
        }
    }

    /** Lease timing of the candidates: lease, renew deadline, retry period (ms). */
    static final long LEASE_MS = 2000;

    static final long RENEW_DEADLINE_MS = 1200;
    static final long RETRY_MS = 400;
    static final long PAUSE_MS = 15_000;

    /** What one run measured. */
    record Result(
            String manager,
            boolean synchronous,
            Fault fault,
            long endToEndMs,
            long leaderChanges,
            int lostAckedGrants,
            int repeatedTokens,
            long staleWritesAccepted,
            long tokenBefore,
            long tokenAfter,
            Timelines timelines,
            CheckReport report) {

        String row() {
            return String.format(
                    Locale.ROOT,
                    "| %s | %s | %s | %s | %d | %d | %d | %d | %s → %s |",
                    manager,
                    synchronous ? "sync" : "async",
                    fault.label,
                    endToEndMs < 0 ? "no new leader" : String.format(Locale.ROOT, "%.1f s", endToEndMs / 1000.0),
                    leaderChanges,
                    lostAckedGrants,
                    repeatedTokens,
                    staleWritesAccepted,
                    text(tokenBefore),
                    text(tokenAfter));
        }

        /**
         * A failover that kept the token guarantees: a new pglease leader, in a later term than the token before the
         * fault, on a promotion the manager did not undo, and nothing lost but grants the standby had not received; no
         * token granted twice.
         */
        void assertNewLeaderInNewTermAndNoTokenTwice() {
            System.out.println(header() + "\n" + row());
            System.out.println(report.render());
            assertThat(endToEndMs).as("a new pglease leader after the failover").isPositive();
            LostGrants.assertOnlyUnreplicatedGrantsLost(report);
            assertThat(tokenAfter >>> 32)
                    .as("the last token is of the promoted timeline (term 2 or later)")
                    .isGreaterThan(tokenBefore >>> 32);
            assertThat(tokenAfter).isGreaterThan(tokenBefore);
            assertThat(timelines.undone())
                    .as("the promotion sticks: " + timelines)
                    .isFalse();
        }

        static String header() {
            return "| manager | replication | fault | fault → new pglease leader | leader changes | lost acknowledged "
                    + "grants | tokens granted twice | stale writes accepted | token before → after (term.counter) |\n"
                    + "|---|---|---|---|---|---|---|---|---|";
        }
    }

    /**
     * What the primaries' timelines did from the fault to the end of a run: the highest timeline a primary answered
     * on, the timeline of the primary at the end, and how many polls (every 250 ms) found two primaries at once.
     * {@link #undone()}: the manager promoted a node to a new timeline and later went back to a lower one (the
     * promoted node demoted and rewound onto the old primary's timeline).
     */
    record Timelines(int highest, int last, int twoPrimaries) {
        boolean undone() {
            return last > 0 && last < highest;
        }

        @Override
        public String toString() {
            return "primary timelines: highest " + highest + ", at the end " + (last > 0 ? last : "none") + ", two "
                    + "primaries at once in " + twoPrimaries + " polls" + (undone() ? " (PROMOTION UNDONE)" : "");
        }

        /** Polls the nodes from construction to {@link #stop()}. */
        static final class Watch {
            private final HaCluster pg;
            private final Thread thread;
            private volatile boolean running = true;
            private int highest;
            private int twoPrimaries;

            Watch(HaCluster pg) {
                this.pg = pg;
                this.thread = new Thread(this::poll, "ha-timelines");
                thread.setDaemon(true);
                thread.start();
            }

            private void poll() {
                while (running) {
                    List<Integer> primaries = pg.primaryTimelines();
                    synchronized (this) {
                        for (int tl : primaries) {
                            highest = Math.max(highest, tl);
                        }
                        if (primaries.size() > 1) {
                            twoPrimaries++;
                        }
                    }
                    PgServer.sleep(250);
                }
            }

            Timelines stop() {
                running = false;
                try {
                    thread.join(10_000);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                List<Integer> now = pg.primaryTimelines();
                synchronized (this) {
                    now.forEach(tl -> highest = Math.max(highest, tl));
                    return new Timelines(
                            highest,
                            now.stream().mapToInt(Integer::intValue).max().orElse(0),
                            twoPrimaries);
                }
            }
        }
    }

    static String text(long token) {
        return ((token >>> 32) + 1) + "." + (token & 0xFFFFFFFFL);
    }

    private HaRun() {}

    /** Boots a fresh cluster of {@code manager}, runs one failover on it and checks the whole history. */
    static Result run(HaCluster.Manager manager, boolean synchronous, Fault fault) {
        long booting = System.nanoTime();
        try (HaCluster pg = manager.start(synchronous)) {
            System.out.printf(
                    Locale.ROOT,
                    "%s (%s) booted in %.1f s; load %s%n",
                    manager.label,
                    synchronous ? "sync" : "async",
                    (System.nanoTime() - booting) / 1e9,
                    Machine.load());
            FaultCluster.Options o = new FaultCluster.Options()
                    .nodes(3)
                    .timing(LEASE_MS, RENEW_DEADLINE_MS, RETRY_MS)
                    .managed(pg.jdbcUrl());
            try (FaultCluster c = FaultCluster.start(o)) {
                return run(manager.label, synchronous, fault, c, pg);
            } catch (RuntimeException | Error e) {
                throw new IllegalStateException(e.getMessage() + "\nmanager state:\n" + state(pg), e);
            }
        }
    }

    private static String state(HaCluster pg) {
        try {
            return pg.state();
        } catch (RuntimeException e) {
            return "unknown (" + e.getMessage() + ")";
        }
    }

    private static Result run(String manager, boolean synchronous, Fault fault, FaultCluster c, HaCluster pg) {
        if (c.awaitLeader(60_000) == null) {
            throw new IllegalStateException("no pglease leader before the fault");
        }
        PgServer.sleep(3_000);
        long before = c.monitor().token();
        String primary = pg.primary();
        long start = System.currentTimeMillis();
        Thread injector = new Thread(
                () -> {
                    switch (fault) {
                        case KILL -> c.custom(fault.kind, primary, () -> pg.kill(primary), 0, () -> {});
                        case PAUSE ->
                            c.custom(
                                    fault.kind,
                                    primary,
                                    () -> pg.freeze(primary, true),
                                    PAUSE_MS,
                                    () -> pg.freeze(primary, false));
                        case SWITCHOVER -> c.custom(fault.kind, primary, pg::switchover, 0, () -> {});
                        default -> throw new IllegalArgumentException(fault.name());
                    }
                },
                "ha-fault");
        Timelines.Watch watch = new Timelines.Watch(pg);
        injector.start();
        long seen = c.awaitNewLeader(before, 120_000);
        try {
            injector.join(180_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        PgServer.sleep(3_000); // the old primary comes back (pause) or stays down (kill); the new leader works
        CheckReport r = c.finish();
        Timelines timelines = watch.stop();
        System.out.println(manager + " after the fault: " + timelines + "\n" + state(pg));
        Long after = c.monitor().token();
        long changes = r.history().ops().stream()
                .filter(op -> op.kind() == Op.Kind.ELECTED && op.ok() && op.invokeMs() >= start)
                .count();
        long stale = r.violations().stream().filter(v -> v.invariant() == 3).count();
        return new Result(
                manager,
                synchronous,
                fault,
                seen < 0 ? -1 : seen - start,
                changes,
                r.lostAckedAcquires(),
                LostGrants.tokensGrantedTwice(r).size(),
                stale,
                before,
                after == null ? 0 : after,
                timelines,
                r);
    }
}
