#!/usr/bin/env bash
# Compatibility runs: the core suite (test classes of package dev.pglease, property core.tests in pom.xml)
#   postgres  on each embedded PostgreSQL major, profiles pg13 .. pg18 (JDK: the default java)
#   jdk       on each JDK found: every /usr/lib/jvm/*/bin/javac plus the homes listed in PGLEASE_JDKS
#             (colon-separated); each run compiles (release 17) and tests with that JDK
#   pgbouncer through PgBouncer in pool_mode=transaction (profile pgbouncer)
#   all       all three (default); several may be given: scripts/compat.sh postgres pgbouncer
# Prints one line per run and a summary with the machine load; exits non-zero if any run failed.
# Under CI=true a JDK home listed in PGLEASE_JDKS that does not exist is a failure, not a skip.
set -uo pipefail
cd "$(dirname "$0")/.."
[ "$#" -gt 0 ] || set -- all
for arg in "$@"; do
    case "$arg" in postgres|jdk|pgbouncer|all) ;; *)
        echo "usage: scripts/compat.sh [postgres|jdk|pgbouncer|all]..., got: $arg" >&2; exit 2;; esac
done
ARGS=" $* "
wants() { [[ "$ARGS" == *" $1 "* || "$ARGS" == *" all "* ]]; }

results=()
failed=0
logs="${TMPDIR:-/tmp}/pglease-compat"
mkdir -p "$logs"
run() { # label, then the command
    local label="$1"; shift
    local log="$logs/$(echo "$label" | tr -c 'A-Za-z0-9.-' '_').log"
    local start=$SECONDS
    if "$@" >"$log" 2>&1; then status=ok; else status=FAILED; failed=1; fi
    local summary
    summary=$(grep -h "Tests run:" target/surefire-reports/*.txt 2>/dev/null \
        | awk -F'[:,]' '{r+=$2; f+=$4; e+=$6; s+=$8} END {printf "%d tests, %d failures, %d errors, %d skipped", r, f, e, s}')
    results+=("$(printf '%-34s %-7s %4ds  %s  (log %s)' "$label" "$status" $((SECONDS - start)) "$summary" "$log")")
    echo "${results[-1]}"
}

if wants postgres; then
    for major in 13 14 15 16 17 18; do
        rm -rf target/surefire-reports
        run "postgres $major" ./mvnw -B -ntp -Ppg"$major" test
    done
fi

if wants pgbouncer; then
    rm -rf target/surefire-reports
    run "pgbouncer transaction pooling" ./mvnw -B -ntp -Ppgbouncer test
fi

if wants jdk; then
    homes=()
    for javac in /usr/lib/jvm/*/bin/javac; do
        [ -x "$javac" ] || continue
        home=$(cd "$(dirname "$javac")/.." && pwd -P)
        [[ " ${homes[*]-} " == *" $home "* ]] || homes+=("$home")
    done
    IFS=: read -r -a extra <<< "${PGLEASE_JDKS:-}"
    for home in "${extra[@]}"; do
        [ -n "$home" ] || continue
        if [ ! -x "$home/bin/javac" ]; then
            echo "PGLEASE_JDKS lists $home, which has no bin/javac" >&2
            [ "${CI:-}" = true ] && failed=1
            continue
        fi
        homes+=("$(cd "$home" && pwd -P)")
    done
    for home in "${homes[@]}"; do
        version=$("$home/bin/java" -version 2>&1 | head -1)
        rm -rf target/surefire-reports
        run "jdk $(basename "$home")" env JAVA_HOME="$home" ./mvnw -B -ntp -Pcore clean test
        echo "    $version"
    done
fi

echo
echo "== compatibility runs ($(nproc) CPUs; $(uptime | sed 's/.*load average/load average/'))"
printf '%s\n' "${results[@]}"
exit "$failed"
