#!/usr/bin/env bash
# Starved candidates: pglease node processes at nice 19 against four busy loops at nice 0, both timing sets at once
# (the comparison's 4 s / 3 s / 1 s and the defaults), no fault injected. Fails on any leader change or revocation;
# either way the table replaces the section between the `starvation:begin` /
# `starvation:end` markers of docs/performance.md, and the run (with the machine's load) is logged in docs/benchmarks/
#   scripts/starvation.sh          10 minutes
#   scripts/starvation.sh 2        a shorter run (minutes)
set -uo pipefail
cd "$(dirname "$0")/.."
MVN="./mvnw -q"
if [[ "${OFFLINE:-}" == 1 ]]; then MVN="$MVN -o"; fi
rm -f target/starvation.md
$MVN test -Ptargets -Dtest=StarvationTargetTest -Dpglease.starvation.minutes="${1:-10}"
status=$?
if [[ ! -f target/starvation.md ]]; then
  echo "no target/starvation.md written" >&2
  exit 1
fi
python3 scripts/lib/replace-section.py docs/performance.md starvation target/starvation.md \
  "scripts/starvation.sh ${1:-10}" "$(nproc) CPUs; \`uptime\` after the run: $(uptime)." || exit 1
exit $status
