#!/usr/bin/env bash
# Long fault run (soak): 1,000+ injected faults against pglease nodes, then the history checker. Prints the
# machine's load before and after, and the table with the scheduling lag measured during every failover window.
# Usage: scripts/soak.sh [seed] [faults] [minutes] [nodes]
#        scripts/soak.sh groups [seed] [faults] [minutes] [member slots]   (a lease group of 64 shards)
# Needs: system PostgreSQL 15 binaries (/usr/lib/postgresql/15/bin), root (runuser -u postgres),
# optional: nftables + iproute2 (netns partitions), faketime (skewed wall clocks).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "groups" ]; then
  shift
  SEED="${1:-${PGLEASE_FAULT_SEED:-$RANDOM$RANDOM}}"
  FAULTS="${2:-1000}"
  MINUTES="${3:-120}"
  SLOTS="${4:-5}"
  echo "soak (groups): seed=$SEED faults=$FAULTS budget=${MINUTES}min member slots=$SLOTS"
  echo "soak (groups): machine before: $(nproc) cores, $(uptime)"
  started=$(date +%s)
  ./mvnw -q -Psoak test -Dtest='dev.pglease.fault.LongGroupFaultRunTest' -Dsurefire.failIfNoSpecifiedTests=false \
    -Dpglease.fault.seed="$SEED" -Dpglease.fault.groupFaults="$FAULTS" \
    -Dpglease.fault.groupMs="$((MINUTES * 60000))" -Dpglease.fault.groupSlots="$SLOTS" || status=$?
  echo "soak (groups): machine after: $(nproc) cores, $(uptime); $(( ($(date +%s) - started) / 60 )) min"
  sed -n '1,/^checker:/p' target/fault-logs/group-run-table.txt 2>/dev/null
  exit "${status:-0}"
fi
SEED="${1:-${PGLEASE_FAULT_SEED:-$RANDOM$RANDOM}}"
FAULTS="${2:-1000}"
MINUTES="${3:-80}"
NODES="${4:-4}"
echo "soak: seed=$SEED faults=$FAULTS budget=${MINUTES}min nodes=$NODES"
echo "soak: machine before: $(nproc) cores, $(uptime)"
./mvnw -q -Psoak test -Dtest='dev.pglease.fault.LongFaultRunTest' -Dsurefire.failIfNoSpecifiedTests=false \
  -Dpglease.fault.seed="$SEED" -Dpglease.fault.longFaults="$FAULTS" \
  -Dpglease.fault.longMs="$((MINUTES * 60000))" -Dpglease.fault.nodes="$NODES" || status=$?
echo "soak: machine after: $(nproc) cores, $(uptime)"
# the table (with the run's maximum load and scheduling lag, and every liveness window with its measured lag)
sed -n '1,/^checker:/p' target/fault-logs/long-run-table.txt 2>/dev/null
exit "${status:-0}"
