#!/usr/bin/env bash
# Prepares a machine for tools/compat: docker (Debian's docker.io, whose
# daemon builds with BuildKit), its daemon, and one busybox base image that
# kiln and docker both hold under the name busybox:latest, byte for byte.
#
#   tools/compat/setup.sh STATE_DIR KILN_BINARY
#
# Then: KILN_ROOT=STATE_DIR/kiln-root cargo run --example compat -- --kiln KILN_BINARY
# Run as root: it installs packages and starts dockerd.
set -euo pipefail
if [[ $# -ne 2 ]]; then
    echo "usage: $0 STATE_DIR KILN_BINARY" >&2
    exit 2
fi
state=$1
kiln=$2
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$state"

if [[ ! -x /usr/bin/docker || ! -x /usr/sbin/dockerd ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if ! /usr/bin/docker info >/dev/null 2>&1; then
    # No init system here: the daemon runs in the background, its log kept.
    nohup /usr/sbin/dockerd >"$state/dockerd.log" 2>&1 &
    for _ in $(seq 60); do
        /usr/bin/docker info >/dev/null 2>&1 && break
        sleep 1
    done
    /usr/bin/docker info >/dev/null 2>&1 || { echo "dockerd did not start: see $state/dockerd.log" >&2; exit 1; }
fi

# The same image in both: made by kiln, saved, loaded into docker.
bash "$repo/fixtures/make-busybox-rootfs.sh" "$state/busybox.tar"
export KILN_ROOT=$state/kiln-root
"$kiln" import "$state/busybox.tar" busybox
"$kiln" save busybox -o "$state/busybox-save.tar"
/usr/bin/docker load -i "$state/busybox-save.tar"
echo "ready: KILN_ROOT=$KILN_ROOT cargo run --example compat -- --kiln $kiln"
