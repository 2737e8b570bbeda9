#!/usr/bin/env bash
# Full side-by-side comparison of pglease with etcd, ZooKeeper, ShedLock and PostgreSQL advisory locks.
# Writes docs/comparison.md and docs/comparison/*.svg (about 10 minutes on two cores).
# Needs: Debian packages etcd-server and etcd-client, the PostgreSQL 15 server binaries in
# /usr/lib/postgresql/15/bin, and root (the PostgreSQL 15 pair runs as the postgres user through runuser).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/etcd ]; then
  echo "etcd is not installed: apt-get install -y etcd-server etcd-client" >&2
  exit 1
fi
exec ./mvnw -Pcompare verify "$@"
