#!/bin/sh
# make_image.sh - builds the gryphgen container image from an installed tree, pulling nothing:
# the tree's bin/gryphgen and its libgryphgen, the shared libraries they need (ldd), /bin/sh,
# and Debian's python3 with its standard library (workers run Python tasks), copied into a
# skeleton, tarred and imported with `podman import` (tests/container/make_image.sh builds
# the tests' images the same way).
#
# usage: make_image.sh PREFIX [IMAGE] [-- PODMAN_ARGS...]
#   PREFIX  an installed tree (meson setup build --prefix=/usr/local -Drpath=true;
#           DESTDIR=/tmp/t meson install -C build: PREFIX=/tmp/t/usr/local)
#   IMAGE   default localhost/gryphgen:latest (the name deploy/kubernetes/gryphgen.yaml uses)
#   PODMAN_ARGS  given before the podman subcommand (e.g. --root DIR --runroot DIR)
set -eu

[ $# -ge 1 ] || { echo "usage: make_image.sh PREFIX [IMAGE] [-- PODMAN_ARGS...]" >&2; exit 2; }
prefix=$1
shift
image=localhost/gryphgen:latest
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    image=$1
    shift
fi
[ $# -gt 0 ] && shift
exe=$prefix/bin/gryphgen
[ -x "$exe" ] || { echo "make_image.sh: no $exe (give an installed tree)" >&2; exit 2; }
py=/usr/bin/python3.11
[ -x "$py" ] || py=$(readlink -f /usr/bin/python3)

tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/usr/bin" "$tree/usr/lib" "$tree/usr/lib64" "$tree/etc" "$tree/tmp" \
         "$tree/work" "$tree/data" "$tree/keys" "$tree/proc" "$tree/dev" "$tree/sys" "$tree/run"
chmod 1777 "$tree/tmp" "$tree/work"
chown 65534:65534 "$tree/data" 2>/dev/null || chmod 0777 "$tree/data"
ln -s usr/bin "$tree/bin"
ln -s usr/lib "$tree/lib"
ln -s usr/lib64 "$tree/lib64"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n' \
    > "$tree/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$tree/etc/group"
cp -L /bin/dash "$tree/usr/bin/sh"
cp -L "$exe" "$tree/usr/bin/gryphgen"
cp -L "$py" "$tree/usr/bin/python3"
# libgryphgen from the tree (found through the rpath or LD_LIBRARY_PATH), then every library
# the programs link.
for lib in "$prefix"/lib/libgryphgen.so* "$prefix"/lib/*/libgryphgen.so*; do
    [ -e "$lib" ] && cp -L "$lib" "$tree/usr/lib/"
done
libs=$(LD_LIBRARY_PATH="$tree/usr/lib" ldd "$tree/usr/bin/gryphgen" "$tree/usr/bin/python3" |
       awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }' | sort -u)
for lib in $libs; do
    case "$lib" in
    "$tree"/*) continue ;;
    /lib/*|/lib64/*) dest="$tree/usr$lib" ;;
    *) dest="$tree$lib" ;;
    esac
    mkdir -p "$(dirname "$dest")"
    [ -e "$dest" ] || cp -L "$lib" "$dest"
done
pyver=$(basename "$py")
cp -a "/usr/lib/$pyver" "$tree/usr/lib/$pyver"
rm -rf "$tree/usr/lib/$pyver/test" "$tree/usr/lib/$pyver/__pycache__"

tar -C "$tree" -cf "$tree.tar" .
# shellcheck disable=SC2086 # PODMAN_ARGS are words
podman "$@" import \
    --change 'ENTRYPOINT ["/usr/bin/gryphgen"]' --change 'CMD ["help"]' \
    --change 'ENV GRYPHGEN_PYTHON=/usr/bin/python3' --change 'ENV LD_LIBRARY_PATH=/usr/lib' \
    --change 'WORKDIR /work' --change 'USER 65534' \
    "$tree.tar" "$image" >/dev/null
rm -f "$tree.tar"
echo "$image"
