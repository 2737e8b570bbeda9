#!/usr/bin/env bash
# Builds the images of the compatibility lanes in scripts/compat.sh, the same way build-images.sh builds the
# container tests' images (mmdebstrap root filesystem from Debian packages, `docker import`, rebuilt only when the
# dev.pglease.hash label differs from the hash of this script and the image's folder):
#
#   pglease/jdk:21         Debian 13 (trixie), amd64: OpenJDK 21 and procps, for the core suite on JDK 21
#                          (Debian 12 has no JDK 21, and trixie's needs trixie's glibc)
#   pglease/jre:17-arm64   Debian 12 (bookworm), arm64: OpenJDK 17 runtime and procps, for the demo on an arm64
#                          JVM under qemu user emulation (needs the Debian packages qemu-user-static,
#                          binfmt-support and arch-test on the host; the root filesystem is built under emulation)
#
# The packages come from the Debian mirror this machine's apt sources already use (their entries for its own
# suite, with the suite name replaced), or from the sources file named by PGLEASE_APT_SOURCES (then used as is
# for every image). Run as root.
#
#   docker/build-compat-images.sh                  build what is missing or stale
#   docker/build-compat-images.sh pglease/jdk:21   only that image
#   docker/build-compat-images.sh --list           print the image names
set -euo pipefail
cd "$(dirname "$0")"

readonly JDK21_IMAGE=pglease/jdk:21
readonly ARM64_IMAGE=pglease/jre:17-arm64

if [ "${1:-}" = --list ]; then
    echo "$JDK21_IMAGE"
    echo "$ARM64_IMAGE"
    exit 0
fi
for arg in "$@"; do
    case "$arg" in "$JDK21_IMAGE"|"$ARM64_IMAGE") ;; *)
        echo "usage: docker/build-compat-images.sh [--list | $JDK21_IMAGE | $ARM64_IMAGE]..., got: $arg" >&2
        exit 2;; esac
done
wanted() { [ "$#" -eq 0 ] || [[ " $* " == *" $image "* ]]; }

. /etc/os-release
host_suite="${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}"

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

hash_of() {
    cat build-compat-images.sh $(find "$1" -type f | sort) | sha256sum | cut -c1-16
}

# build IMAGE FOLDER SUITE ARCH IMPORT-CHANGES...: FOLDER/packages lists the Debian packages to install.
build() {
    local image="$1" folder="$2" suite="$3" arch="$4" packages
    shift 4
    packages="$(tr -s ' \n' ',' < "$folder/packages" | sed 's/,$//')"
    local hash current
    hash="$(hash_of "$folder")"
    current="$(docker image inspect --format '{{ index .Config.Labels "dev.pglease.hash" }}' "$image" 2>/dev/null || true)"
    if [ "$current" = "$hash" ]; then
        echo "$image is up to date (hash $hash)"
        return
    fi
    if [ "$arch" != "$(dpkg --print-architecture)" ] && ! arch-test "$arch" >/dev/null 2>&1; then
        echo "$image: this machine can not run $arch programs; install qemu-user-static, binfmt-support and" \
            "arch-test (Debian packages), and mount binfmt_misc if /proc/sys/fs/binfmt_misc is empty" >&2
        exit 1
    fi
    echo "building $image from Debian $suite $arch packages ($packages), hash $hash"
    local started=$SECONDS sources rootfs
    sources="$(mktemp)"
    rootfs="$(mktemp --suffix=.tar)"
    apt_sources "$suite" > "$sources"
    # As in build-images.sh: no package manager state, documentation or locales (man1 must exist for the JRE's
    # postinst).
    mmdebstrap --variant=apt --quiet --format=tar --architectures="$arch" \
        --include="$packages" \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --essential-hook='mkdir -p "$1/usr/share/man/man1"' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
        "$suite" "$rootfs" "$sources"
    docker import --platform "linux/$arch" --change "LABEL dev.pglease.hash=$hash" "$@" "$rootfs" "$image" >/dev/null
    rm -f "$rootfs" "$sources"
    echo "built $image in $((SECONDS - started)) s"
}

image=$JDK21_IMAGE
if wanted "$@"; then
    build "$image" jdk21 trixie amd64 \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV JAVA_HOME=/usr/lib/jvm/java-21-openjdk-amd64' \
        --change 'CMD ["java", "-version"]'
fi
image=$ARM64_IMAGE
if wanted "$@"; then
    build "$image" jre17-arm64 "$host_suite" arm64 \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["java", "-version"]'
fi
