package dev.pglease.fault;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Checks a recorded {@link History} against the invariants of DESIGN.md section 6. Pure function of the history:
 * no database, no clock, so it is unit-tested on hand-made histories with planted violations.
 */
public final class Checker {

  /**
   * Timing the run used.
   *
   * @param leaseDurationMs lease duration
   * @param retryPeriodMs   retry period
   * @param livenessSlackMs the "small bound" added to leaseDuration + retryPeriod for invariant 7
   */
  public record Config(long leaseDurationMs, long retryPeriodMs, long livenessSlackMs) {
    public long livenessBoundMs() {
      return leaseDurationMs + retryPeriodMs + livenessSlackMs;
    }
  }

  private final Config config;

  public Checker(Config config) {
    this.config = config;
  }

  public CheckReport check(History history) {
    List<Op> ops = history.ops();
    List<Violation> violations = new ArrayList<>();
    Set<String> lostAcks = new HashSet<>();
    checkSingleHolder(history, ops, violations, lostAcks);
    checkRealTimeOrder(ops, violations);
    checkAcceptOrder(history, ops, violations);
    checkDurability(history, ops, violations, lostAcks);
    checkDeadlines(ops, violations);
    checkDbIntervals(history, ops, violations);
    Map<FaultKind, List<Long>> failovers = new EnumMap<>(FaultKind.class);
    checkLiveness(history, ops, violations, failovers);
    violations.sort(Comparator.comparingLong(Violation::atMs).thenComparingInt(Violation::invariant));
    return new CheckReport(history, violations, lostAcks.size(), failovers);
  }

  // ---- 1: a token is granted to at most one holder --------------------------------------------------------------

  private record Claim(long token, String holder, long atMs, String source, Long opIndex) {
  }

  private static void checkSingleHolder(History h, List<Op> ops, List<Violation> out, Set<String> lostAcks) {
    List<Claim> claims = new ArrayList<>();
    for (Op op : ops) {
      if (op.token() == null || op.holder() == null || !op.ok()) {
        continue;
      }
      switch (op.kind()) {
        case ACQUIRE, RENEW, ELECTED, WRITE, RELEASE ->
            claims.add(new Claim(op.token(), op.holder(), op.completeMs(), op.kind().name().toLowerCase(),
                op.index()));
        default -> {
        }
      }
    }
    for (DbRecords.LeaseEvent e : h.leaseEvents()) {
      if (e.isGrant()) {
        claims.add(new Claim(e.token(), e.holder(), e.atMicros() / 1000, e.render(), null));
      }
    }
    for (DbRecords.Accept a : h.accepts()) {
      if (a.holder() != null) {
        claims.add(new Claim(a.token(), a.holder(), a.atMicros() / 1000, a.render(), null));
      }
    }
    claims.sort(Comparator.comparingLong(Claim::atMs));
    Map<Long, Claim> first = new HashMap<>();
    Set<Long> reported = new HashSet<>();
    for (Claim c : claims) {
      Claim f = first.putIfAbsent(c.token(), c);
      if (f != null && !f.holder().equals(c.holder()) && reported.add(c.token())) {
        List<Long> involved = new ArrayList<>();
        List<String> evidence = new ArrayList<>();
        for (Claim x : List.of(f, c)) {
          if (x.opIndex() != null) {
            involved.add(x.opIndex());
          } else {
            evidence.add(x.source());
          }
        }
        out.add(new Violation(1, "token " + c.token() + " granted to " + f.holder() + " (" + sourceName(f)
            + ") and to " + c.holder() + " (" + sourceName(c) + ")", c.atMs(), involved, evidence));
        // an acknowledged acquire of this token by the first holder was lost
        for (Op op : ops) {
          if (op.kind() == Op.Kind.ACQUIRE && op.ok() && op.token() != null && op.token() == c.token()) {
            lostAcks.add(op.holder() + "/" + op.token());
          }
        }
      }
    }
  }

  private static String sourceName(Claim c) {
    return c.opIndex() != null ? c.source() + " #" + c.opIndex() : "database";
  }

  // ---- 2: real-time order of tokens ---------------------------------------------------------------------------

  private static void checkRealTimeOrder(List<Op> ops, List<Violation> out) {
    List<Op> acquires = new ArrayList<>();
    List<Op> observations = new ArrayList<>();
    for (Op op : ops) {
      if (!op.ok() || op.token() == null) {
        continue;
      }
      if (op.kind() == Op.Kind.ACQUIRE) {
        acquires.add(op);
      }
      if (op.kind() == Op.Kind.ACQUIRE || op.kind() == Op.Kind.RENEW || op.kind() == Op.Kind.READ
          || op.kind() == Op.Kind.WRITE) {
        observations.add(op);
      }
    }
    sweep(acquires, true, out, "acquire");
    sweep(observations, false, out, "observation");
  }

  /** For every op B, the ops that completed before B was invoked must carry a lower (strict) or no higher token. */
  private static void sweep(List<Op> list, boolean strict, List<Violation> out, String what) {
    List<Op> byComplete = new ArrayList<>(list);
    byComplete.sort(Comparator.comparingLong(Op::completeMs));
    List<Op> byInvoke = new ArrayList<>(list);
    byInvoke.sort(Comparator.comparingLong(Op::invokeMs).thenComparingLong(Op::index));
    int i = 0;
    Op max = null;
    Set<Long> reported = new HashSet<>();
    for (Op b : byInvoke) {
      while (i < byComplete.size() && byComplete.get(i).completeMs() < b.invokeMs()) {
        Op a = byComplete.get(i++);
        if (max == null || a.token() > max.token()) {
          max = a;
        }
      }
      if (max == null) {
        continue;
      }
      boolean bad = strict ? max.token() >= b.token() : max.token() > b.token();
      if (bad && reported.add(b.index())) {
        out.add(new Violation(2, (strict ? "acquire #" + max.index() + " (token " + max.token()
            + ") completed before acquire #" + b.index() + " started, which got token " + b.token()
            : what + " #" + b.index() + " (" + b.kind().name().toLowerCase() + ") saw token " + b.token()
            + " after #" + max.index() + " had seen token " + max.token() + ": the highest token decreased"),
            b.invokeMs(), List.of(max.index(), b.index()), List.of()));
      }
    }
  }

  // ---- 3: the resource accepts writes in token order -----------------------------------------------------------

  private static void checkAcceptOrder(History h, List<Op> ops, List<Violation> out) {
    List<DbRecords.Accept> log = new ArrayList<>(h.accepts());
    log.sort(Comparator.comparingLong(DbRecords.Accept::value).thenComparingLong(DbRecords.Accept::id));
    DbRecords.Accept prev = null;
    DbRecords.Accept highest = null;
    for (DbRecords.Accept a : log) {
      if (prev != null && prev.value() == a.value() && prev.name().equals(a.name())) {
        out.add(new Violation(3, "two accepted writes produced counter value " + a.value() + " (lost update)",
            a.atMicros() / 1000, List.of(), List.of(prev.render(), a.render())));
      }
      if (highest != null && a.token() < highest.token()) {
        out.add(new Violation(3, "resource accepted a write with token " + a.token() + " (holder " + a.holder()
            + ", value " + a.value() + ") after a write with token " + highest.token() + " (holder "
            + highest.holder() + ")", a.atMicros() / 1000, writesWithValue(ops, highest.value(), a.value()),
            List.of(highest.render(), a.render())));
        break; // everything after the first inversion is noise
      }
      if (highest == null || a.token() > highest.token()) {
        highest = a;
      }
      prev = a;
    }
    if (!h.dbLoaded()) {
      // no accept log: fall back to the writers' own acknowledgements, ordered by the counter value
      List<Op> writes = new ArrayList<>();
      for (Op op : ops) {
        if (op.kind() == Op.Kind.WRITE && op.ok() && op.value() != null && op.token() != null) {
          writes.add(op);
        }
      }
      writes.sort(Comparator.comparingLong(Op::value));
      Op top = null;
      for (Op w : writes) {
        if (top != null && w.token() < top.token()) {
          out.add(new Violation(3, "write #" + w.index() + " with token " + w.token() + " accepted (value "
              + w.value() + ") after write #" + top.index() + " with token " + top.token(), w.completeMs(),
              List.of(top.index(), w.index()), List.of()));
          break;
        }
        if (top == null || w.token() > top.token()) {
          top = w;
        }
      }
    }
  }

  private static List<Long> writesWithValue(List<Op> ops, long... values) {
    List<Long> idx = new ArrayList<>();
    for (Op op : ops) {
      if (op.kind() == Op.Kind.WRITE && op.value() != null) {
        for (long v : values) {
          if (op.value() == v) {
            idx.add(op.index());
          }
        }
      }
    }
    return idx;
  }

  // ---- 4: acknowledged acquires and writes are durable --------------------------------------------------------

  private static void checkDurability(History h, List<Op> ops, List<Violation> out, Set<String> lostAcks) {
    List<Op> reads = new ArrayList<>();
    for (Op op : ops) {
      if (op.kind() == Op.Kind.READ && op.ok() && op.token() != null) {
        reads.add(op);
      }
    }
    reads.sort(Comparator.comparingLong(Op::invokeMs));
    // suffix minimum of read tokens
    int n = reads.size();
    long[] suffixMin = new long[n + 1];
    suffixMin[n] = Long.MAX_VALUE;
    for (int i = n - 1; i >= 0; i--) {
      suffixMin[i] = Math.min(suffixMin[i + 1], reads.get(i).token());
    }
    boolean reportedOne = false;
    for (Op a : ops) {
      if (a.kind() != Op.Kind.ACQUIRE || !a.ok() || a.token() == null) {
        continue;
      }
      int lo = 0;
      int hi = n;
      while (lo < hi) {
        int mid = (lo + hi) >>> 1;
        if (reads.get(mid).invokeMs() > a.completeMs()) {
          hi = mid;
        } else {
          lo = mid + 1;
        }
      }
      if (suffixMin[lo] < a.token()) {
        Op lower = null;
        for (int i = lo; i < n; i++) {
          if (reads.get(i).token() < a.token()) {
            lower = reads.get(i);
            break;
          }
        }
        lostAcks.add(a.holder() + "/" + a.token());
        if (!reportedOne || lostAcks.size() <= 3) {
          out.add(new Violation(4, "acquire #" + a.index() + " was acknowledged with token " + a.token()
              + " but read #" + lower.index() + " later found token " + lower.token()
              + ": an acknowledged grant was lost", lower.invokeMs(), List.of(a.index(), lower.index()),
              List.of()));
          reportedOne = true;
        }
      }
    }
    if (h.dbLoaded()) {
      Map<Long, DbRecords.Accept> byValue = new HashMap<>();
      for (DbRecords.Accept acc : h.accepts()) {
        byValue.putIfAbsent(acc.value(), acc);
      }
      int reported = 0;
      for (Op w : ops) {
        if (w.kind() == Op.Kind.WRITE && w.ok() && w.value() != null && w.token() != null) {
          DbRecords.Accept acc = byValue.get(w.value());
          if ((acc == null || acc.token() != w.token()) && reported++ < 3) {
            out.add(new Violation(4, "write #" + w.index() + " was acknowledged (token " + w.token() + ", value "
                + w.value() + ") but the accept log " + (acc == null ? "has no such value" : "holds "
                + acc.render()), w.completeMs(), List.of(w.index()), List.of()));
          }
        }
      }
    }
  }

  // ---- 5: no write started after the local deadline -----------------------------------------------------------

  private static void checkDeadlines(List<Op> ops, List<Violation> out) {
    for (Op op : ops) {
      if (op.kind() == Op.Kind.WRITE && op.deadlineMs() != null && op.invokeMs() > op.deadlineMs()) {
        out.add(new Violation(5, "write #" + op.index() + " by " + op.holder() + " started "
            + (op.invokeMs() - op.deadlineMs()) + " ms after its local deadline", op.invokeMs(),
            List.of(op.index()), List.of()));
      }
    }
  }

  // ---- 6: grant intervals on the database clock never overlap -------------------------------------------------

  private static void checkDbIntervals(History h, List<Op> ops, List<Violation> out) {
    // start of each grant: lease_events grant time, or acquired_at seen by reads
    TreeMap<Long, Long> start = new TreeMap<>();
    Map<Long, String> startWhy = new HashMap<>();
    Map<Long, Long> end = new HashMap<>();
    Map<Long, String> endWhy = new HashMap<>();
    for (DbRecords.LeaseEvent e : h.leaseEvents()) {
      if (e.isGrant()) {
        if (!start.containsKey(e.token()) || e.atMicros() < start.get(e.token())) {
          start.put(e.token(), e.atMicros());
          startWhy.put(e.token(), e.render());
        }
      } else {
        end.merge(e.token(), e.atMicros(), Math::min);
        endWhy.put(e.token(), e.render());
      }
    }
    Map<Long, Long> readEnd = new HashMap<>();
    Map<Long, Op> readEndOp = new HashMap<>();
    for (Op r : ops) {
      if (r.kind() != Op.Kind.READ || !r.ok() || r.token() == null) {
        continue;
      }
      if (r.dbFrom() != null && r.holder() != null
          && (!start.containsKey(r.token()) || r.dbFrom() < start.get(r.token()))) {
        start.put(r.token(), r.dbFrom());
        startWhy.put(r.token(), "read #" + r.index() + " acquired_at");
      }
      if (r.dbTo() != null && r.holder() != null && r.dbTo() > readEnd.getOrDefault(r.token(), Long.MIN_VALUE)) {
        readEnd.put(r.token(), r.dbTo());
        readEndOp.put(r.token(), r);
      }
    }
    for (Map.Entry<Long, Long> e : readEnd.entrySet()) {
      if (!end.containsKey(e.getKey())) {
        end.put(e.getKey(), e.getValue());
        endWhy.put(e.getKey(), "expires_at seen by read #" + readEndOp.get(e.getKey()).index());
      }
    }
    long maxEnd = Long.MIN_VALUE;
    Long maxEndToken = null;
    for (Map.Entry<Long, Long> e : start.entrySet()) {
      long t = e.getKey();
      if (maxEndToken != null && e.getValue() < maxEnd) {
        out.add(new Violation(6, "grant of token " + t + " at " + DbTime.format(e.getValue())
            + " overlaps the grant of token " + maxEndToken + " which lasted until " + DbTime.format(maxEnd),
            e.getValue() / 1000, List.of(), List.of(startWhy.get(t), startWhy.get(maxEndToken) + " .. "
            + endWhy.get(maxEndToken))));
        break;
      }
      Long en = end.get(t);
      if (en != null && en > maxEnd) {
        maxEnd = en;
        maxEndToken = t;
      }
    }
    // fenced writes land inside their grant: at < start of the next grant
    List<DbRecords.Accept> log = new ArrayList<>(h.accepts());
    log.sort(Comparator.comparingLong(DbRecords.Accept::atMicros));
    for (DbRecords.Accept a : log) {
      Map.Entry<Long, Long> next = start.higherEntry(a.token());
      Long own = start.get(a.token());
      if (next != null && a.atMicros() >= next.getValue()) {
        out.add(new Violation(6, "write with token " + a.token() + " accepted at " + DbTime.format(a.atMicros())
            + ", after token " + next.getKey() + " was granted at " + DbTime.format(next.getValue()),
            a.atMicros() / 1000, List.of(), List.of(a.render(), String.valueOf(startWhy.get(next.getKey())))));
        break;
      }
      if (own != null && a.atMicros() < own) {
        out.add(new Violation(6, "write with token " + a.token() + " accepted at " + DbTime.format(a.atMicros())
            + ", before that token was granted at " + DbTime.format(own), a.atMicros() / 1000, List.of(),
            List.of(a.render(), String.valueOf(startWhy.get(a.token())))));
        break;
      }
    }
  }

  // ---- 7: liveness ---------------------------------------------------------------------------------------------

  private void checkLiveness(History h, List<Op> ops, List<Violation> out, Map<FaultKind, List<Long>> failovers) {
    List<Op> grants = new ArrayList<>();
    long lastTime = h.t0();
    for (Op op : ops) {
      lastTime = Math.max(lastTime, op.completeMs());
      if ((op.kind() == Op.Kind.ACQUIRE || op.kind() == Op.Kind.ELECTED) && op.ok()) {
        grants.add(op);
      }
    }
    grants.sort(Comparator.comparingLong(Op::completeMs));
    List<FaultRecord> faults = h.faults();
    long bound = config.livenessBoundMs();
    for (FaultRecord f : faults) {
      if (!f.leaderLoss()) {
        continue;
      }
      Op first = null;
      for (Op g : grants) {
        if (g.completeMs() >= f.startMs() && (f.leaderToken() == null || g.token() == null
            || g.token() > f.leaderToken())) {
          first = g;
          break;
        }
      }
      // the window runs from the fault to the first new grant (or to the bound): measured only if no other fault
      // touched it
      long windowEnd = first == null ? f.startMs() + bound : Math.min(first.completeMs(), f.startMs() + bound);
      boolean clean = true;
      long nextFault = Long.MAX_VALUE;
      for (FaultRecord g : faults) {
        if (g == f) {
          continue;
        }
        long gEnd = g.endMs() < 0 ? Long.MAX_VALUE : g.endMs();
        if (g.startMs() <= windowEnd && gEnd >= f.startMs()) {
          clean = false;
        }
        if (g.startMs() > f.startMs()) {
          nextFault = Math.min(nextFault, g.startMs());
        }
      }
      if (first != null && first.completeMs() <= nextFault) {
        long ms = first.completeMs() - f.startMs();
        if (clean) {
          failovers.computeIfAbsent(f.kind(), k -> new ArrayList<>()).add(ms);
          if (ms > bound && f.kind().livenessBounded()) {
            out.add(new Violation(7, "after fault#" + f.index() + " (" + f.kind().label() + ") the next grant, #"
                + first.index() + ", came after " + ms + " ms > bound " + bound + " ms", first.completeMs(),
                List.of(first.index()), List.of(f.render(h.t0()))));
          }
        }
      } else if (clean && f.kind().livenessBounded() && Math.min(nextFault, lastTime) - f.startMs() > bound) {
        out.add(new Violation(7, "after fault#" + f.index() + " (" + f.kind().label() + ") no new grant within "
            + bound + " ms", f.startMs() + bound, List.of(), List.of(f.render(h.t0()))));
      }
    }
  }

  /** Orders the per-kind lists for reporting. */
  static Map<FaultKind, List<Long>> sorted(Map<FaultKind, List<Long>> m) {
    Map<FaultKind, List<Long>> r = new LinkedHashMap<>();
    m.forEach((k, v) -> {
      List<Long> c = new ArrayList<>(v);
      c.sort(null);
      r.put(k, c);
    });
    return r;
  }
}
