#!/bin/sh
# make_image.sh - builds the minimal Python image the container executor's tests and benchmark
# run: Debian's /usr/bin/python3.11 with its standard library, /bin/sh (dash) and the shared
# libraries they need, copied from the host into a tree, tarred and imported with
# `podman import` into the given storage. No registry, no network; about 2 s.
#
# usage: make_image.sh PODMAN_ARGS... -- [IMAGE]
#   PODMAN_ARGS are passed before the podman subcommand (e.g. --root DIR --runroot DIR);
#   IMAGE defaults to gryphgen-python:latest. Exits 77 when a needed host file is missing.
set -eu

args=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    args="$args $1"
    shift
done
[ $# -gt 0 ] && shift
image=${1:-gryphgen-python:latest}

py=/usr/bin/python3.11
stdlib=/usr/lib/python3.11
for f in "$py" "$stdlib" /bin/dash; do
    if [ ! -e "$f" ]; then
        echo "make_image.sh: $f is missing on this host; cannot build the image" >&2
        exit 77
    fi
done

tree=$(mktemp -d "${TMPDIR:-/tmp}/gg-image-XXXXXX")
trap 'rm -rf "$tree"' EXIT INT TERM

# A merged-/usr layout like Debian's, so the paths ldd prints exist inside.
mkdir -p "$tree/usr/bin" "$tree/usr/lib" "$tree/usr/lib64" "$tree/etc" "$tree/work" \
         "$tree/tmp" "$tree/proc" "$tree/dev" "$tree/sys" "$tree/run"
# /work is where the executor mounts the job's tmpfs; Podman copies the directory's mode
# into that tmpfs, so it must be writable by the job's unprivileged user.
chmod 1777 "$tree/tmp" "$tree/work"
ln -s usr/bin "$tree/bin"
ln -s usr/lib "$tree/lib"
ln -s usr/lib64 "$tree/lib64"
ln -s usr/bin "$tree/sbin"

cp -L "$py" "$tree/usr/bin/python3.11"
ln -s python3.11 "$tree/usr/bin/python3"
ln -s python3.11 "$tree/usr/bin/python"
cp -L /bin/dash "$tree/usr/bin/sh"

# The standard library without what jobs never use (tests, the static library, IDLE, tk).
tar -C /usr/lib -cf - --exclude='python3.11/test' --exclude='python3.11/config-3.11-*' \
    --exclude='python3.11/idlelib' --exclude='python3.11/tkinter' \
    --exclude='python3.11/ensurepip' --exclude='python3.11/lib2to3' \
    --exclude='python3.11/site-packages' --exclude='python3.11/dist-packages' \
    python3.11 | tar -C "$tree/usr/lib" -xf -

# Every shared library the interpreter, the shell and the extension modules link.
libs=$( { ldd "$py"; ldd /bin/dash; for so in "$stdlib"/lib-dynload/*.so; do ldd "$so"; done; } \
        2>/dev/null | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' | sort -u)
for lib in $libs; do
    case "$lib" in
    /lib/*|/lib64/*) dest="$tree/usr$lib" ;;
    *) dest="$tree$lib" ;;
    esac
    mkdir -p "$(dirname "$dest")"
    cp -L "$lib" "$dest"
done

printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' \
    > "$tree/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$tree/etc/group"

# shellcheck disable=SC2086
tar -C "$tree" -cf - . | podman $args import --quiet - "$image" >/dev/null
echo "$image"
