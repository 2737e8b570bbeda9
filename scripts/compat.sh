#!/usr/bin/env bash
# Compatibility lanes: the suites that exercise what the default build (./mvnw verify: JDK 17, embedded PostgreSQL 17,
# no pooler) does not vary, each in a copy of the tree of its own, two at a time (PGLEASE_LANES_PARALLEL):
#   pg13 pg14 pg15 pg16 pg18     the core and security suites (JUnit tags core, security) on that embedded major
#   pg17                         the same on 17 (CI leaves it to the default build, which runs them on 17)
#   pgbouncer-transaction        the same through PgBouncer in pool_mode=transaction
#   pgbouncer-session            the same through PgBouncer in pool_mode=session
#   jdk21                        the core suite on JDK 21: a JDK 21 here, else OpenJDK 21 in the image pglease/jdk:21
#                                (docker/build-images.sh builds it; needs a Docker engine: .ci/docker.sh start)
#   jdk25                        the core suite on JDK 25 (Temurin under /usr/lib/jvm, or the home in PGLEASE_JDK25)
#   arm64                        the demo on an emulated arm64 JVM (manual: scripts/arm64-demo.sh)
# Groups: postgres (pg13 pg14 pg15 pg16 pg18), pgbouncer (both modes), jdk (jdk21 jdk25), all (every lane CI runs,
# the default). Lanes reuse the classes the tree compiled (./mvnw test-compile first). Each lane prints its result,
# time and counts, with what it declared not in the lane; logs in target/lanes/LANE.log, results in
# target/lanes/results.tsv. Exits non-zero if a lane failed.
#   scripts/compat.sh                      every lane CI runs
#   scripts/compat.sh pg13 pgbouncer       some lanes
#   scripts/compat.sh --parallel 1 jdk     one at a time
#   scripts/compat.sh --list               the lanes
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --list ]; then
    exec python3 scripts/lib/lanes.py list
fi
exec python3 scripts/lib/lanes.py run "$@"
