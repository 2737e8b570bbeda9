package dev.pglease.compare;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/** The plain-language reading at the end of the page, written from the measured numbers. */
final class Reading {
    private Reading() {}

    static String text(Harness h) {
        StringBuilder s = new StringBuilder("## Reading the results\n\n");
        List<Lane> lanes = h.lanes;
        long lease = h.timings.leaseMs();

        // crash failover
        List<Lane> byKill = new ArrayList<>(lanes);
        byKill.removeIf(l -> l.results.kill.isEmpty());
        byKill.sort(Comparator.comparingLong(l -> Results.percentile(l.results.kill, 50)));
        if (!byKill.isEmpty()) {
            s.append("**A crashed leader.** Median time without a leader: ");
            List<String> parts = new ArrayList<>();
            for (Lane l : byKill) {
                parts.add(l.title + " " + Report.ms(Results.percentile(l.results.kill, 50)));
            }
            s.append(String.join(", ", parts))
                    .append(". Everything that works with a lease (pglease, ShedLock, ")
                    .append("etcd, ZooKeeper) has to wait for the lease or session of the dead process to run out, ")
                    .append("so its failover is bounded by the ")
                    .append(Report.sec(lease))
                    .append(" lease and ")
                    .append("lands between the lease minus one renewal interval and the lease plus one retry. ")
                    .append("The advisory lock is the exception: when a process dies, its kernel closes the ")
                    .append("socket, PostgreSQL ends the session and frees the lock at once, and the next ")
                    .append("standby poll takes it. That speed only holds for crashes the kernel sees.\n\n");
        }

        // pause
        s.append("**A leader that stops without dying** (a long GC pause, a frozen VM, SIGSTOP) is the case that ")
                .append("separates the designs. ");
        for (Lane l : lanes) {
            int att = 0;
            int acc = 0;
            int rej = 0;
            long fo = -1;
            List<Long> fos = new ArrayList<>();
            for (Results.PauseTrial p : l.results.pauses) {
                att += p.attemptsAfterTakeover();
                acc += p.acceptedAfterTakeover();
                rej += p.rejected();
                if (p.failoverMs() >= 0) {
                    fos.add(p.failoverMs());
                }
            }
            if (!fos.isEmpty()) {
                fo = Results.percentile(fos, 50);
            }
            int n = l.results.pauses.size();
            if (n == 0) {
                continue;
            }
            switch (l.backend) {
                case "pglease" ->
                    s.append("pglease: a successor took over after ")
                            .append(Report.ms(fo))
                            .append(" (median); on waking, the ex-leader started ")
                            .append(att)
                            .append(" protected write(s) in ")
                            .append(n)
                            .append(" trial(s), because its local ")
                            .append("deadline (measured from before the last renewal was sent) had passed before it ")
                            .append("could act; the fence would have rejected any that slipped through (")
                            .append(acc)
                            .append(" accepted). ");
                case "etcd" ->
                    s.append("etcd: successor after ")
                            .append(Report.ms(fo))
                            .append("; the resumed ")
                            .append("ex-leader started ")
                            .append(att)
                            .append(" write(s) before jetcd reported the ")
                            .append("lost lease, ")
                            .append(rej)
                            .append(" rejected by the revision fence, ")
                            .append(acc)
                            .append(" accepted. ");
                case "zookeeper" ->
                    s.append("ZooKeeper: successor after ")
                            .append(Report.ms(fo))
                            .append("; the ")
                            .append("ex-leader started ")
                            .append(att)
                            .append(" write(s) before Curator reported the ")
                            .append("connection SUSPENDED, ")
                            .append(rej)
                            .append(" rejected by the czxid fence, ")
                            .append(acc)
                            .append(" accepted. ");
                case "shedlock" ->
                    s.append("ShedLock: successor after ")
                            .append(Report.ms(fo))
                            .append("; the ")
                            .append("ex-leader kept working until its next extend failed and started ")
                            .append(att)
                            .append(" write(s); with no token, ")
                            .append(acc)
                            .append(" of them were accepted after ")
                            .append("the new leader had written. ");
                case "advisory" ->
                    s.append("Advisory lock: the lock was freed only because ")
                            .append("`idle_session_timeout` ended the paused holder's session (successor after ")
                            .append(Report.ms(fo))
                            .append("; without that setting the lock stays held for as long ")
                            .append("as the process is frozen, because the kernel keeps the TCP connection alive); ")
                            .append("the ex-leader started ")
                            .append(att)
                            .append(" write(s) before its next ping ")
                            .append("failed and ")
                            .append(acc)
                            .append(" were accepted after the new leader's. ");
                default -> {}
            }
        }
        s.append("\n\nThe lesson is the old one: a lock without a token can not protect a resource from a ")
                .append("holder that does not know it has lost the lock. etcd and ZooKeeper give a token, but ")
                .append("their clients learn about the loss only after they wake and talk to the server, so the ")
                .append("resource check is what stops the writes. pglease adds the local deadline, so the ")
                .append("resumed leader stops before it writes, and the same token for the resource check.\n\n");

        // handoff
        List<Lane> byHo = new ArrayList<>(lanes);
        byHo.removeIf(l -> l.results.handoff.isEmpty());
        byHo.sort(Comparator.comparingLong(l -> Results.percentile(l.results.handoff, 50)));
        if (!byHo.isEmpty()) {
            s.append("**Planned restarts.** Median handoff when the leader shuts down cleanly: ");
            List<String> parts = new ArrayList<>();
            for (Lane l : byHo) {
                parts.add(l.title + " " + Report.ms(Results.percentile(l.results.handoff, 50)));
            }
            s.append(String.join(", ", parts))
                    .append(". pglease standbys are woken by NOTIFY, etcd and ")
                    .append("ZooKeeper standbys by a watch; ShedLock and advisory-lock standbys only poll, so they ")
                    .append("take up to one poll interval (")
                    .append(Report.sec(h.timings.retryMs()))
                    .append(" here). All times include the old leader's JVM shutdown. ");
            for (Lane l : byHo) {
                long p50 = Results.percentile(l.results.handoff, 50);
                boolean notified = !l.backend.equals("shedlock") && !l.backend.equals("advisory");
                long max = Results.percentile(l.results.handoff, 100);
                if (notified && p50 <= h.timings.retryMs() && max > h.timings.leaseMs()) {
                    s.append(l.title)
                            .append("'s slowest handoff took ")
                            .append(Report.ms(max))
                            .append(", longer than the lease, although the old leader's process had exited ")
                            .append("within ")
                            .append(Report.ms(Results.percentile(l.results.handoffExit, 100)))
                            .append(" in every trial; this run does not show why. ");
                }
                if (notified && p50 > h.timings.retryMs()) {
                    s.append(l.title)
                            .append(" was slower than its notification design suggests (p50 ")
                            .append(Report.ms(p50))
                            .append(", p99 ")
                            .append(Report.ms(Results.percentile(l.results.handoff, 99)))
                            .append("); this run does not show where the time goes (in the short smoke runs ")
                            .append("the same handoff takes tens of milliseconds). ");
                }
            }
            s.append("\n\n");
        }

        // store loss
        boolean anyLoss = lanes.stream().anyMatch(l -> !l.results.storeLoss.isEmpty());
        if (anyLoss) {
            s.append("**When the store itself fails.** ");
            for (Lane l : lanes) {
                for (Results.StoreLoss x : l.results.storeLoss) {
                    s.append(l.title)
                            .append(": ")
                            .append(x.leaderChanges())
                            .append(" leader change(s), longest ")
                            .append("write gap ")
                            .append(Report.ms(x.longestWriteGapMs()))
                            .append(". ");
                }
            }
            s.append("\n\n");
            for (Lane l : lanes) {
                for (Results.StoreLoss x : l.results.storeLoss) {
                    boolean changed = x.leaderChanges() > 0;
                    switch (l.backend) {
                        case "etcd" ->
                            s.append(
                                    changed
                                            ? "- etcd: losing the Raft leader cost a leader change here.\n"
                                            : "- etcd: the surviving members elected a new Raft leader and the lease survived; "
                                                    + "the candidates did not notice.\n");
                        case "zookeeper" ->
                            s.append(
                                    changed
                                            ? "- ZooKeeper: while the surviving servers elect a new leader they stop serving "
                                                    + "clients; Curator reports the connection SUSPENDED and LeaderLatch, with Curator's "
                                                    + "default error policy, gives up leadership at once, so a store-side failover "
                                                    + "became a leader change (Curator's SessionConnectionStateErrorPolicy would wait "
                                                    + "for the session to actually expire).\n"
                                            : "- ZooKeeper: the ensemble re-elected its leader without a leader change.\n");
                        case "pglease" ->
                            s.append(
                                    changed
                                            ? "- pglease: the promoted server is on a new timeline, so the lease moved to a new "
                                                    + "term: the leader's renewal of its old-term token failed, it stepped down and took "
                                                    + "the lease again at once with a token of the new term (a leader change, no "
                                                    + "token repeated).\n"
                                            : "- pglease: the lease row was on the synchronous standby, so the leader renewed "
                                                    + "against the promoted server and kept its lease and token.\n");
                        case "shedlock" ->
                            s.append(
                                    changed
                                            ? "- ShedLock: the promotion cost a leader change here.\n"
                                            : "- ShedLock: the lock row was replicated too, and the holder's next extend "
                                                    + "worked on the promoted server.\n");
                        case "advisory" ->
                            s.append(
                                    changed
                                            ? "- Advisory lock: the lock lived only in the old primary's memory; it was gone "
                                                    + "after promotion and a candidate took it again on the new primary. Nothing "
                                                    + "tells a resource that the leader before and after are different terms.\n"
                                            : "- Advisory lock: the same candidate re-acquired the lock on the new primary "
                                                    + "(the lock itself did not survive: it lives in server memory).\n");
                        default -> {}
                    }
                }
            }
            s.append("\nPostgreSQL has no built-in failover: with a synchronous standby the lease rows survive ")
                    .append("promotion, but something (Patroni, an operator) has to promote it, and that ")
                    .append("detection time is not in these numbers. etcd and ZooKeeper fail over by ")
                    .append("themselves.\n\n");
        }

        // CPU load
        if (h.plan.loadMs() > 0) {
            s.append("**Starved candidates.** Leader changes while the candidates were starved of CPU: ");
            List<String> parts = new ArrayList<>();
            boolean pgleaseChanged = false;
            for (Lane l : lanes) {
                parts.add(l.title + " " + l.results.loadLeaderChanges);
                pgleaseChanged |= l.backend.equals("pglease") && l.results.loadLeaderChanges > 0;
            }
            s.append(String.join(", ", parts)).append(". ");
            if (pgleaseChanged) {
                s.append("A pglease leader steps down when a renewal has not completed within renewDeadline (")
                        .append(Report.sec(h.timings.renewMs()))
                        .append(" here) of being sent, even if the ")
                        .append("lease row is still valid: a starved leader gives up rather than act late. The ")
                        .append("other backends keep leadership for as long as the store sees the lease kept ")
                        .append("alive, so a starved leader keeps it, and may act late. A longer renewDeadline ")
                        .append("(the default is 6 s of a 10 s lease) makes pglease more tolerant.");
            } else {
                s.append("No backend gave up leadership in this window.");
            }
            s.append("\n\n");
        }

        // cost
        s.append("**Cost.** ");
        for (Lane l : lanes) {
            Results r = l.results;
            s.append(l.title)
                    .append(": ")
                    .append(Report.num(r.requestsPerSec / Math.max(1, h.plan.candidates())))
                    .append(" requests/s per candidate, store CPU ")
                    .append(Report.pct(r.steadyCpuPct))
                    .append(", ")
                    .append(r.storeProcesses)
                    .append(" store process(es). ");
        }
        s.append("\nA few candidates are nothing for any of them. The difference that matters is operational: ")
                .append("pglease, ShedLock and advisory locks live in the PostgreSQL you already run, back up ")
                .append("and monitor; etcd and ZooKeeper are a three-node service of their own, which pays off ")
                .append("when you need their strengths (failover of the store itself, watches, many keys), not ")
                .append("for one leader lock.\n\n");

        s.append("**Choosing.** If you already run PostgreSQL and need one or a few leaders with fenced writes, ")
                .append("pglease gives ZooKeeper-class safety (a token that only grows, a local deadline) at ")
                .append("lease-bounded failover, with no new infrastructure; its weak spot is the database's own ")
                .append("failover, which is as good as your PostgreSQL HA. ShedLock is made for \"run this job on ")
                .append("one node\" and is fine for idempotent jobs, but as a leader lock it has no token and no ")
                .append("way to tell the holder it lost the lock. Advisory locks fail over fastest on crashes and ")
                .append("are free, but a paused or partitioned holder keeps the lock unless you set ")
                .append("`idle_session_timeout`, there is no token, and the lock disappears with the session on ")
                .append("any reconnect or database failover. etcd and ZooKeeper are the choice when the ")
                .append("coordination store must survive its own node failures without an operator, or when ")
                .append("you already run them.\n");
        return s.toString();
    }
}
