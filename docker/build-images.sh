#!/usr/bin/env bash
# Builds local images from Debian packages, without any image registry:
#
#   pglease/postgres:15    PostgreSQL 15 with an entry point that follows the official postgres image's contract
#                          (POSTGRES_USER/PASSWORD/DB, init scripts on first start, the same readiness log lines)
#   pglease/jre:17         a Java 17 runtime for `pglease node` containers (the -all jar is mounted into it)
#   pglease/jdk:21         Debian 13 (trixie), amd64: OpenJDK 21 and procps, for the core suite on JDK 21 in
#                          scripts/compat.sh (Debian 12 has no JDK 21, and trixie's needs trixie's glibc)
#   pglease/jre:17-arm64   Debian 12 arm64: OpenJDK 17 runtime and procps, for the demo on an arm64 JVM under qemu
#                          user emulation in scripts/compat.sh (needs qemu-user-static, binfmt-support and arch-test
#                          on the host; the root filesystem is built under emulation)
#
# Each root filesystem is made by mmdebstrap from the Debian mirror this machine's apt sources already use (their
# entries for its own suite, with the suite name replaced for another suite), or from the sources file named by
# PGLEASE_APT_SOURCES (used as is), and imported with `docker import`. An image is built only when it is missing or
# its dev.pglease.hash label differs from the hash of its recipe (the build functions, its suite, architecture and
# import settings, and its folder), so a second run reuses it. Run as root (mmdebstrap mounts /proc in the chroot).
#
#   docker/build-images.sh            the container tests' images (pglease/postgres:15, pglease/jre:17)
#   docker/build-images.sh IMAGE...   only these (any of the four)
#   docker/build-images.sh --list     print the container tests' image names
set -euo pipefail
cd "$(dirname "$0")"

readonly POSTGRES_IMAGE=pglease/postgres:15
readonly JRE_IMAGE=pglease/jre:17
readonly JDK21_IMAGE=pglease/jdk:21
readonly ARM64_IMAGE=pglease/jre:17-arm64

if [ "${1:-}" = --list ]; then
    echo "$POSTGRES_IMAGE"
    echo "$JRE_IMAGE"
    exit 0
fi
for arg in "$@"; do
    case "$arg" in "$POSTGRES_IMAGE"|"$JRE_IMAGE"|"$JDK21_IMAGE"|"$ARM64_IMAGE") ;; *)
        echo "usage: docker/build-images.sh [--list | IMAGE...] where IMAGE is one of $POSTGRES_IMAGE, $JRE_IMAGE," \
            "$JDK21_IMAGE, $ARM64_IMAGE; got: $arg" >&2
        exit 2;; esac
done
wanted=("$@")
[ "${#wanted[@]}" -gt 0 ] || wanted=("$POSTGRES_IMAGE" "$JRE_IMAGE")

. /etc/os-release
host_suite="${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}"
host_arch="$(dpkg --print-architecture)"

# apt_sources SUITE: this machine's apt sources that serve Debian itself (its suite and that suite's -updates and
# -security), rewritten for SUITE; third-party repositories are left out.
apt_sources() {
    local suite="$1"
    if [ -n "${PGLEASE_APT_SOURCES:-}" ]; then
        cat "$PGLEASE_APT_SOURCES"
        return
    fi
    local f found=0
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        if grep -Eq "^(Suites:.*[[:space:]]|deb[[:space:]].*[[:space:]])${host_suite}([[:space:]]|-updates|-security|\$)" "$f"; then
            grep -v '^[[:space:]]*#' "$f" | sed "s/\\<${host_suite}\\>/${suite}/g"
            echo
            found=1
        fi
    done
    if [ "$found" = 0 ]; then
        echo "no apt source for Debian $host_suite found; set PGLEASE_APT_SOURCES to a sources file" >&2
        exit 1
    fi
}

# build IMAGE FOLDER SUITE ARCH IMPORT-CHANGES...: FOLDER/packages lists the Debian packages to install; every other
# file in FOLDER is copied to /usr/local/lib/pglease in the image.
build() {
    local image="$1" folder="$2" suite="$3" arch="$4" packages
    shift 4
    packages="$(tr -s ' \n' ',' < "$folder/packages" | sed 's/,$//')"
    local hash current
    hash="$({ declare -f apt_sources build; echo "$suite $arch $*"; find "$folder" -type f | sort | xargs cat; } \
        | sha256sum | cut -c1-16)"
    current="$(docker image inspect --format '{{ index .Config.Labels "dev.pglease.hash" }}' "$image" 2>/dev/null || true)"
    if [ "$current" = "$hash" ]; then
        echo "$image is up to date (hash $hash)"
        return
    fi
    local platform=()
    if [ "$arch" != "$host_arch" ]; then
        if ! arch-test "$arch" >/dev/null 2>&1; then
            echo "$image: this machine can not run $arch programs; install qemu-user-static, binfmt-support and" \
                "arch-test (Debian packages), and mount binfmt_misc if /proc/sys/fs/binfmt_misc is empty" >&2
            exit 1
        fi
        platform=(--platform "linux/$arch")
    fi
    echo "building $image from Debian $suite $arch packages ($packages), hash $hash"
    local started=$SECONDS sources rootfs files copy=()
    files="$(find "$PWD/$folder" -type f ! -name packages | sort | tr '\n' ' ')"
    if [ -n "$files" ]; then
        copy=(--customize-hook='mkdir -p "$1/usr/local/lib/pglease"'
              --customize-hook="copy-in $files/usr/local/lib/pglease")
    fi
    sources="$(mktemp)"
    rootfs="$(mktemp --suffix=.tar)"
    apt_sources "$suite" > "$sources"
    # The images need no package manager state, documentation or locales; the Debian cluster that
    # postgresql-common creates at install time is removed (the postgres entry point makes its own).
    # (man1 must exist: the JRE's postinst links its manual pages there even though they are left out.)
    mmdebstrap --variant=apt --quiet --format=tar --architectures="$arch" \
        --include="$packages" \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --essential-hook='mkdir -p "$1/usr/share/man/man1"' \
        "${copy[@]}" \
        --customize-hook='rm -rf "$1"/var/lib/postgresql/* "$1"/etc/postgresql/* "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
        "$suite" "$rootfs" "$sources"
    docker import "${platform[@]}" --change "LABEL dev.pglease.hash=$hash" "$@" "$rootfs" "$image" >/dev/null
    rm -f "$rootfs" "$sources"
    echo "built $image in $((SECONDS - started)) s"
}

for image in "${wanted[@]}"; do
    case "$image" in
        "$POSTGRES_IMAGE") build "$image" postgres "$host_suite" "$host_arch" \
            --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change 'ENV PGDATA=/var/lib/postgresql/data' \
            --change 'EXPOSE 5432' \
            --change 'ENTRYPOINT ["/usr/local/lib/pglease/entrypoint.sh"]' \
            --change 'CMD ["postgres"]' ;;
        "$JRE_IMAGE") build "$image" jre "$host_suite" "$host_arch" \
            --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["java", "-version"]' ;;
        "$JDK21_IMAGE") build "$image" jdk21 trixie amd64 \
            --change 'ENV LANG=C.UTF-8' \
            --change 'ENV JAVA_HOME=/usr/lib/jvm/java-21-openjdk-amd64' \
            --change 'CMD ["java", "-version"]' ;;
        "$ARM64_IMAGE") build "$image" jre17-arm64 "$host_suite" arm64 \
            --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["java", "-version"]' ;;
    esac
done
