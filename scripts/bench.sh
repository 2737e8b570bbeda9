#!/usr/bin/env bash
# Runs pglease's benchmarks: JMH (per-call costs) and the scenario harness (handoff, failover, standbys, scale).
#   scripts/bench.sh          full run, about 20 minutes; writes target/bench/performance-full.md
#   scripts/bench.sh smoke    tiny sizes, under a minute; writes target/bench/performance-smoke.md
#   scripts/bench.sh jmh [regex]   only the JMH benchmarks (full settings), e.g. scripts/bench.sh jmh 'renew|fencedWrite'
# Uses an embedded PostgreSQL (pg_stat_statements preloaded) unless PGLEASE_BENCH_JDBC_URL is set.
set -euo pipefail
cd "$(dirname "$0")/.."
MVN="./mvnw -q"
if [[ "${OFFLINE:-}" == 1 ]]; then MVN="$MVN -o"; fi
$MVN test-compile
$MVN dependency:build-classpath -Dmdep.outputFile=target/bench-classpath.txt -Dmdep.includeScope=test >/dev/null
CP="target/test-classes:target/classes:$(cat target/bench-classpath.txt)"
mode="${1:-full}"
case "$mode" in
  full)  exec java -Xmx1g -cp "$CP" dev.pglease.bench.FullRun full target/bench ;;
  smoke) exec java -Xmx1g -cp "$CP" dev.pglease.bench.FullRun smoke target/bench ;;
  jmh)   exec java -Xmx1g -cp "$CP" dev.pglease.bench.JmhLauncher full "${2:-.*}" ;;
  *) echo "usage: $0 [full|smoke|jmh [regex]]" >&2; exit 2 ;;
esac
