#!/usr/bin/env bash
# The Docker engine for the container tests (ContainerPauseTest, ComposeWalkthroughIT), used by .ci/run:
#
#   .ci/docker.sh start   install docker.io, docker-compose and mmdebstrap if missing, start dockerd unless an
#                         engine already answers (its PID goes to target/dockerd.pid), build or reuse the images
#   .ci/docker.sh stop    remove containers a crashed test left behind, stop the dockerd this script started
#
# Without root nothing is installed or started; the container tests then skip (or fail under CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."

readonly PID_FILE=target/dockerd.pid
readonly LOG_FILE=target/dockerd.log

start() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "not root: can not install or start a Docker engine; the container tests will skip" >&2
        return 0
    fi
    local packages=()
    command -v dockerd >/dev/null 2>&1 || packages+=(docker.io)
    command -v docker-compose >/dev/null 2>&1 || packages+=(docker-compose)
    command -v mmdebstrap >/dev/null 2>&1 || packages+=(mmdebstrap)
    if [ "${#packages[@]}" -gt 0 ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d   # install without starting services
        chmod +x /usr/sbin/policy-rc.d
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${packages[@]}" || { rm -f /usr/sbin/policy-rc.d; exit 1; }
        rm -f /usr/sbin/policy-rc.d
    fi
    mkdir -p target
    if docker version >/dev/null 2>&1; then
        echo "a Docker engine already answers: using it"
    else
        dockerd > "$LOG_FILE" 2>&1 &
        echo $! > "$PID_FILE"
        local i
        for i in $(seq 1 60); do
            docker version >/dev/null 2>&1 && break
            kill -0 "$(cat "$PID_FILE")" 2>/dev/null || { cat "$LOG_FILE" >&2; echo "dockerd exited" >&2; exit 1; }
            sleep 1
        done
        docker version --format 'dockerd {{.Server.Version}} (API {{.Server.APIVersion}}) started, PID '"$(cat "$PID_FILE")"
    fi
    local started=$SECONDS
    docker/build-images.sh
    echo "images ready in $((SECONDS - started)) s"
}

stop() {
    if docker version >/dev/null 2>&1; then
        # Containers of the tests (Testcontainers labels its own; compose projects of the walkthrough test).
        local left
        left="$(docker ps -aq --filter label=org.testcontainers=true;
                docker ps -aq --filter label=com.docker.compose.project | xargs -r docker inspect \
                    --format '{{ index .Config.Labels "com.docker.compose.project" }} {{ .Id }}' \
                    | awk '$1 ~ /^pgleasewalk/ { print $2 }')"
        if [ -n "$left" ]; then
            echo "removing containers left behind: $left"
            echo "$left" | xargs docker rm -f -v >/dev/null
        fi
    fi
    if [ -f "$PID_FILE" ]; then
        local pid
        pid="$(cat "$PID_FILE")"
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid"
            local i
            for i in $(seq 1 30); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 1
            done
        fi
        rm -f "$PID_FILE"
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
