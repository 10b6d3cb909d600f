#!/bin/sh
# run_engine_tests.sh - starts Podman's Docker-compatible service on a socket in a temporary
# directory (its own storage, runtime runc, cgroup manager cgroupfs, no events), builds the
# minimal Python and C images into that storage, runs the given test programs against it with
# GG_CONTAINER_SOCKET, GG_CONTAINER_IMAGE and GG_CONTAINER_C_IMAGE (empty without a C image)
# set, then stops the service by its PID and
# removes the directory. Exit 77 (skipped) when podman or runc is missing.
#
# usage: run_engine_tests.sh TEST_PROGRAM...
set -u
here=$(cd "$(dirname "$0")" && pwd)

for tool in podman runc curl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "SKIP: $tool is not installed (apt-get install podman runc)" >&2
        exit 77
    fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gg-podman-XXXXXX")
pid=""
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        kill -9 "$pid" 2>/dev/null
    fi
    # The storage holds overlay mounts while in use; unmount what is left before removing.
    grep " $tmp/" /proc/mounts 2>/dev/null | awk '{ print $2 }' | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

pargs="--root $tmp/root --runroot $tmp/runroot --runtime runc --cgroup-manager cgroupfs --events-backend none"
sock="$tmp/podman.sock"
# shellcheck disable=SC2086
podman $pargs system service --time 0 "unix://$sock" >"$tmp/service.log" 2>&1 &
pid=$!

# Until the service answers (it may be slow to start on a loaded machine); the deadline only
# guards against a service that never comes up.
deadline=$(($(date +%s) + 120))
until [ "$(curl -s --max-time 5 --unix-socket "$sock" http://engine/_ping 2>/dev/null)" = "OK" ]; do
    if [ "$(date +%s)" -gt "$deadline" ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "podman system service did not answer on $sock:" >&2
        cat "$tmp/service.log" >&2
        exit 1
    fi
    sleep 0.1
done

# The C image needs the host's gcc 12, binutils and libc6-dev; without them the C tests skip.
c_image=gryphgen-c:latest
if ! command -v x86_64-linux-gnu-gcc-12 >/dev/null 2>&1 || [ ! -e /usr/include/stdio.h ]; then
    echo "SKIP (C image): the host has no gcc-12 or libc6-dev" >&2
    c_image=""
fi
# shellcheck disable=SC2086
images=$("$here/make_image.sh" $pargs -- gryphgen-python:latest $c_image)
rc=$?
if [ $rc -ne 0 ]; then
    exit $rc
fi
image=$(echo "$images" | sed -n 1p)
c_image=$(echo "$images" | sed -n 2p)

status=0
for t in "$@"; do
    GG_CONTAINER_SOCKET="$sock" GG_CONTAINER_IMAGE="$image" GG_CONTAINER_C_IMAGE="$c_image" "$t"
    r=$?
    if [ $r -ne 0 ] && [ $r -ne 77 ]; then
        status=$r
    fi
done
exit $status
