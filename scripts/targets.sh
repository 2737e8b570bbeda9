#!/usr/bin/env bash
# Measures failover and handoff through `pglease node` processes and checks the targets (Maven profile `targets`):
# SIGTERM -> standby elected (with a breakdown; a standby started moments before, and one up for 3 s, on which the
# handoff targets are judged), kill -9 -> standby elected with fast failover on and off.
# The run fails when a target is missed; either way the tables replace the section between the `targets:begin` /
# `targets:end` markers of docs/performance.md, and the run (with the machine's load) is logged in docs/benchmarks/.
#   scripts/targets.sh            2 x 40 handoffs, 20 fast-failover crashes, 3 crashes without it (about 9 minutes)
#   HANDOFFS=15 CRASHES=8 PLAIN_CRASHES=2 scripts/targets.sh     a shorter run
set -uo pipefail
cd "$(dirname "$0")/.."
MVN="./mvnw -q"
if [[ "${OFFLINE:-}" == 1 ]]; then MVN="$MVN -o"; fi
rm -f target/targets.md
$MVN test -Ptargets -Dtest=TimingTargetsTest \
  -Dpglease.targets.handoffs="${HANDOFFS:-40}" -Dpglease.targets.crashes="${CRASHES:-20}" \
  -Dpglease.targets.plainCrashes="${PLAIN_CRASHES:-3}"
status=$?
if [[ ! -f target/targets.md ]]; then
  echo "no target/targets.md written" >&2
  exit 1
fi
python3 scripts/lib/replace-section.py docs/performance.md targets target/targets.md \
  "HANDOFFS=${HANDOFFS:-40} CRASHES=${CRASHES:-20} PLAIN_CRASHES=${PLAIN_CRASHES:-3} scripts/targets.sh" \
  "$(nproc) CPUs; \`uptime\` before the run: ${UPTIME_BEFORE:-$(uptime)}." || exit 1
exit $status
