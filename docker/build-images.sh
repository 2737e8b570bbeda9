#!/usr/bin/env bash
# Builds the local images the container tests use, from Debian packages, without any image registry:
#
#   pglease/postgres:15   PostgreSQL 15 with an entry point that follows the official postgres image's contract
#                         (POSTGRES_USER/PASSWORD/DB, init scripts on first start, the same readiness log lines)
#   pglease/jre:17        a Java 17 runtime for `pglease node` containers (the -all jar is mounted into it)
#
# Each root filesystem is made by mmdebstrap from the Debian mirror this machine's apt sources already use
# (or from the sources file named by PGLEASE_APT_SOURCES) and imported with `docker import`. An image is built
# only when it is missing or its dev.pglease.hash label differs from the hash of its inputs (this script and
# the image's folder), so a second run reuses it. Run as root (mmdebstrap mounts /proc in the chroot).
#
#   docker/build-images.sh            build what is missing or stale
#   docker/build-images.sh --list     print the image names
set -euo pipefail
cd "$(dirname "$0")"

readonly POSTGRES_IMAGE=pglease/postgres:15
readonly JRE_IMAGE=pglease/jre:17

if [ "${1:-}" = --list ]; then
    echo "$POSTGRES_IMAGE"
    echo "$JRE_IMAGE"
    exit 0
fi

. /etc/os-release
suite="${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}"

# The apt sources of this machine that serve Debian itself (the suite and its -updates/-security), in either
# format; third-party repositories are left out.
apt_sources() {
    if [ -n "${PGLEASE_APT_SOURCES:-}" ]; then
        cat "$PGLEASE_APT_SOURCES"
        return
    fi
    local f found=0
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        if grep -Eq "^(Suites:.*[[:space:]]|deb[[:space:]].*[[:space:]])${suite}([[:space:]]|-updates|-security|\$)" "$f"; then
            cat "$f"
            echo
            found=1
        fi
    done
    if [ "$found" = 0 ]; then
        echo "no apt source for Debian $suite found; set PGLEASE_APT_SOURCES to a sources file" >&2
        exit 1
    fi
}

hash_of() {
    cat build-images.sh $(find "$1" -type f | sort) | sha256sum | cut -c1-16
}

# build IMAGE FOLDER IMPORT-CHANGES...: FOLDER/packages lists the Debian packages to install; every other file in
# FOLDER is copied to /usr/local/lib/pglease in the image.
build() {
    local image="$1" folder="$2" packages
    shift 2
    packages="$(tr -s ' \n' ',' < "$folder/packages" | sed 's/,$//')"
    local hash current
    hash="$(hash_of "$folder")"
    current="$(docker image inspect --format '{{ index .Config.Labels "dev.pglease.hash" }}' "$image" 2>/dev/null || true)"
    if [ "$current" = "$hash" ]; then
        echo "$image is up to date (hash $hash)"
        return
    fi
    echo "building $image from Debian $suite packages ($packages), hash $hash"
    local started=$SECONDS sources
    sources="$(mktemp)"
    local files copy=()
    files="$(find "$PWD/$folder" -type f ! -name packages | sort | tr '\n' ' ')"
    if [ -n "$files" ]; then
        copy=(--customize-hook='mkdir -p "$1/usr/local/lib/pglease"'
              --customize-hook="copy-in $files/usr/local/lib/pglease")
    fi
    apt_sources > "$sources"
    # The image needs no package manager state, documentation or locales; the Debian cluster that
    # postgresql-common creates at install time is removed (the entry point makes its own).
    # (man1 must exist: the JRE's postinst links its manual pages there even though they are left out.)
    local rootfs
    rootfs="$(mktemp --suffix=.tar)"
    mmdebstrap --variant=apt --quiet --format=tar \
        --include="$packages" \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --essential-hook='mkdir -p "$1/usr/share/man/man1"' \
        "${copy[@]}" \
        --customize-hook='rm -rf "$1"/var/lib/postgresql/* "$1"/etc/postgresql/* "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
        "$suite" "$rootfs" "$sources"
    docker import --change "LABEL dev.pglease.hash=$hash" "$@" "$rootfs" "$image" >/dev/null
    rm -f "$rootfs"
    rm -f "$sources"
    echo "built $image in $((SECONDS - started)) s"
}

build "$POSTGRES_IMAGE" postgres \
    --change 'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PGDATA=/var/lib/postgresql/data' \
    --change 'EXPOSE 5432' \
    --change 'ENTRYPOINT ["/usr/local/lib/pglease/entrypoint.sh"]' \
    --change 'CMD ["postgres"]'

build "$JRE_IMAGE" jre \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["java", "-version"]'
