#!/bin/sh
# make_image.sh - builds the minimal images the container executor's tests and benchmark run,
# from host files only (no registry, no network), each copied into a tree, tarred and
# imported with `podman import` into the given storage:
#   the Python image: Debian's /usr/bin/python3.11 with its standard library, /bin/sh (dash)
#     and the shared libraries they need (about 2 s);
#   the C image (when C_IMAGE is given): /bin/sh, the host's gcc 12 driver (as /usr/bin/cc
#     and gcc), cc1, collect2, as, ld, the crt files, libgcc, the C library's headers and
#     development files (libc6-dev, linux-libc-dev) and every shared library those programs
#     need (ldd) - about 55 MB, a few seconds.
#
# usage: make_image.sh PODMAN_ARGS... -- [IMAGE [C_IMAGE]]
#   PODMAN_ARGS are passed before the podman subcommand (e.g. --root DIR --runroot DIR);
#   IMAGE defaults to gryphgen-python:latest. Prints the names of the images built. Exits 77
#   when a needed host file is missing (packages python3.11, gcc-12, binutils, libc6-dev).
set -eu

args=""
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    args="$args $1"
    shift
done
[ $# -gt 0 ] && shift
image=${1:-gryphgen-python:latest}
c_image=${2:-}

# The skeleton every image shares: a merged-/usr layout like Debian's (so the paths ldd prints
# exist inside), /bin/sh, users, and /work and /tmp writable by the job's unprivileged user
# (Podman copies the directory's mode into the tmpfs the executor mounts there).
skeleton() {
    mkdir -p "$1/usr/bin" "$1/usr/lib" "$1/usr/lib64" "$1/etc" "$1/work" \
             "$1/tmp" "$1/proc" "$1/dev" "$1/sys" "$1/run"
    chmod 1777 "$1/tmp" "$1/work"
    ln -s usr/bin "$1/bin"
    ln -s usr/lib "$1/lib"
    ln -s usr/lib64 "$1/lib64"
    ln -s usr/bin "$1/sbin"
    cp -L /bin/dash "$1/usr/bin/sh"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' \
        > "$1/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$1/etc/group"
}

# Copies the shared libraries the given ELF files link (ldd) into the tree $1.
copy_libs() {
    t=$1
    shift
    libs=$(for f in "$@"; do ldd "$f" 2>/dev/null; done |
           awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' | sort -u)
    for lib in $libs; do
        case "$lib" in
        /lib/*|/lib64/*) dest="$t/usr$lib" ;;
        *) dest="$t$lib" ;;
        esac
        mkdir -p "$(dirname "$dest")"
        [ -e "$dest" ] || cp -L "$lib" "$dest"
    done
}

# Copies host paths (files or directories, symlinks followed at the top) to the same place
# in the tree $1, under /usr for /lib and /bin paths.
copy_paths() {
    t=$1
    shift
    for f in "$@"; do
        case "$f" in
        /lib/*|/bin/*) dest="$t/usr$f" ;;
        *) dest="$t$f" ;;
        esac
        mkdir -p "$(dirname "$dest")"
        if [ -d "$f" ]; then
            mkdir -p "$dest"
            tar -C "$f" -cf - . | tar -C "$dest" -xf -
        else
            cp -L "$f" "$dest"
        fi
    done
}

import_tree() {
    # shellcheck disable=SC2086
    tar -C "$1" -cf - . | podman $args import --quiet - "$2" >/dev/null
    echo "$2"
}

py=/usr/bin/python3.11
stdlib=/usr/lib/python3.11
for f in "$py" "$stdlib" /bin/dash; do
    if [ ! -e "$f" ]; then
        echo "make_image.sh: $f is missing on this host; cannot build the image" >&2
        exit 77
    fi
done

gcc_dir=/usr/lib/gcc/x86_64-linux-gnu/12
multi=/usr/lib/x86_64-linux-gnu
if [ -n "$c_image" ]; then
    for f in /usr/bin/x86_64-linux-gnu-gcc-12 "$gcc_dir/cc1" "$gcc_dir/collect2" \
             /usr/bin/x86_64-linux-gnu-as /usr/bin/x86_64-linux-gnu-ld.bfd \
             /usr/include/stdio.h /usr/include/linux/errno.h "$multi/crt1.o"; do
        if [ ! -e "$f" ]; then
            echo "make_image.sh: $f is missing on this host; cannot build the C image" >&2
            exit 77
        fi
    done
fi

tree=$(mktemp -d "${TMPDIR:-/tmp}/gg-image-XXXXXX")
ctree=$(mktemp -d "${TMPDIR:-/tmp}/gg-image-c-XXXXXX")
trap 'rm -rf "$tree" "$ctree"' EXIT INT TERM

skeleton "$tree"
cp -L "$py" "$tree/usr/bin/python3.11"
ln -s python3.11 "$tree/usr/bin/python3"
ln -s python3.11 "$tree/usr/bin/python"

# The standard library without what jobs never use (tests, the static library, IDLE, tk).
tar -C /usr/lib -cf - --exclude='python3.11/test' --exclude='python3.11/config-3.11-*' \
    --exclude='python3.11/idlelib' --exclude='python3.11/tkinter' \
    --exclude='python3.11/ensurepip' --exclude='python3.11/lib2to3' \
    --exclude='python3.11/site-packages' --exclude='python3.11/dist-packages' \
    python3.11 | tar -C "$tree/usr/lib" -xf -

# Every shared library the interpreter, the shell and the extension modules link.
copy_libs "$tree" "$py" /bin/dash "$stdlib"/lib-dynload/*.so
import_tree "$tree" "$image"

[ -n "$c_image" ] || exit 0
# The C image: the compiler driver, its passes and the C library's development files; no
# LTO, sanitizers, C++ or static C library (jobs link dynamically against libc and libm).
skeleton "$ctree"
copy_paths "$ctree" /usr/bin/x86_64-linux-gnu-gcc-12 /usr/bin/x86_64-linux-gnu-as \
    /usr/bin/x86_64-linux-gnu-ld.bfd "$gcc_dir/cc1" "$gcc_dir/collect2" \
    "$gcc_dir/crtbegin.o" "$gcc_dir/crtbeginS.o" "$gcc_dir/crtend.o" "$gcc_dir/crtendS.o" \
    "$gcc_dir/libgcc.a" "$gcc_dir/libgcc_eh.a" "$gcc_dir/libgcc_s.so" "$gcc_dir/include" \
    "$gcc_dir/liblto_plugin.so" "$gcc_dir/lto-wrapper"
# Only the C library's and the kernel's headers (not every -dev package of the host).
dpkg -L libc6-dev linux-libc-dev libcrypt-dev 2>/dev/null | grep '^/usr/include/' |
    while read -r f; do [ -f "$f" ] && printf '%s\n' "${f#/}"; done |
    tar -C / -cf - -T - | tar -C "$ctree" -xf -
for f in "$multi"/*crt1.o "$multi"/crti.o "$multi"/crtn.o "$multi"/libc.so "$multi"/libm.so \
         "$multi"/libc_nonshared.a "$multi"/libmvec.so "$multi"/libgcc_s.so.1; do
    [ -e "$f" ] && copy_paths "$ctree" "$f"
done
for n in cc gcc gcc-12 x86_64-linux-gnu-gcc; do
    ln -sf x86_64-linux-gnu-gcc-12 "$ctree/usr/bin/$n"
done
ln -sf x86_64-linux-gnu-as "$ctree/usr/bin/as"
ln -sf x86_64-linux-gnu-ld.bfd "$ctree/usr/bin/ld"
ln -sf x86_64-linux-gnu-ld.bfd "$ctree/usr/bin/x86_64-linux-gnu-ld"
# The shared libraries the programs link, and those the link scripts (libc.so, libm.so) name.
copy_libs "$ctree" /bin/dash /usr/bin/x86_64-linux-gnu-gcc-12 "$gcc_dir/cc1" \
    "$gcc_dir/collect2" "$gcc_dir/liblto_plugin.so" "$gcc_dir/lto-wrapper" \
    /usr/bin/x86_64-linux-gnu-as /usr/bin/x86_64-linux-gnu-ld.bfd
for f in /lib/x86_64-linux-gnu/libc.so.6 /lib/x86_64-linux-gnu/libm.so.6 \
         /lib/x86_64-linux-gnu/libmvec.so.1 /lib64/ld-linux-x86-64.so.2; do
    [ -e "$f" ] && [ ! -e "$ctree/usr$f" ] && copy_paths "$ctree" "$f"
done
import_tree "$ctree" "$c_image"
