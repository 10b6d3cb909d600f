#!/bin/bash
# check_install.sh - installs the current build into a temporary DESTDIR and builds
# examples/embed.c the way a user would, with nothing but `pkg-config --cflags --libs
# gryphgen`, then runs it: it must print a passed result. Every other examples/*.c is built
# and run the same way and must exit 0. Also checks the installed
# gryphgen.pc (private requirements) and the soname (libgryphgen.so.1).
# Usage: check_install.sh MESON BUILD_ROOT SOURCE_ROOT [SANITIZE]
# SANITIZE is meson's b_sanitize value: an instrumented library needs an instrumented program.
set -euo pipefail

meson=${1:?usage: check_install.sh MESON BUILD_ROOT SOURCE_ROOT [SANITIZE]}
build=${2:?build root}
src=${3:?source root}
sanitize=${4:-none}
rpath=${5:-false}
cc=${CC:-cc}
# meson test points LD_LIBRARY_PATH at the build tree; a user of the installed library has
# no such thing, and it would hide an install that is broken.
unset LD_LIBRARY_PATH
command -v pkg-config >/dev/null || { echo "check_install: pkg-config not found"; exit 1; }
command -v "$cc" >/dev/null || { echo "check_install: compiler '$cc' not found"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/dest

# $meson may be "python3 /path/meson.py"-like; word splitting is intended.
# shellcheck disable=SC2086
if ! $meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >"$tmp/install.log" 2>&1; then
    echo "FAIL: meson install into $dest:"; sed 's/^/    /' "$tmp/install.log"; exit 1
fi

fail=0
pc=$(find "$dest" -name gryphgen.pc -path '*pkgconfig*' | head -n1)
if [ -z "$pc" ]; then
    echo "FAIL: gryphgen.pc was not installed"; exit 1
fi

# The .pc file names the real prefix; point a copy of it into the DESTDIR tree.
prefix=$(sed -n 's/^prefix=//p' "$pc")
[ -n "$prefix" ] || { echo "FAIL: gryphgen.pc has no prefix= line"; exit 1; }
mkdir -p "$tmp/pc"
sed "s|=$prefix|=$dest$prefix|" "$pc" >"$tmp/pc/gryphgen.pc"

reqs=$(sed -n 's/^Requires\.private:[[:space:]]*//p' "$pc")
for r in libzmq libcjson libcurl sqlite3; do
    echo "$reqs" | tr ', ' '\n\n' | grep -qx "$r" || { echo "FAIL: gryphgen.pc Requires.private lacks $r (has: '$reqs')"; fail=1; }
done

libdir=$(PKG_CONFIG_PATH=$tmp/pc pkg-config --variable=libdir gryphgen)
if [ ! -d "$libdir" ]; then
    echo "FAIL: libdir $libdir of the installed gryphgen.pc does not exist"; exit 1
fi
real=$(find "$libdir" -maxdepth 1 -name 'libgryphgen.so.*.*' -type f | head -n1)
if [ -z "$real" ]; then
    echo "FAIL: no libgryphgen.so.X.Y.Z installed in $libdir"; fail=1
else
    soname=$(objdump -p "$real" | awk '$1 == "SONAME" { print $2 }')
    [ "$soname" = libgryphgen.so.1 ] || { echo "FAIL: soname is '$soname', wanted libgryphgen.so.1"; fail=1; }
fi
[ -L "$libdir/libgryphgen.so.1" ] || { echo "FAIL: $libdir/libgryphgen.so.1 symlink missing"; fail=1; }
[ -e "$libdir/libgryphgen.so" ] || { echo "FAIL: $libdir/libgryphgen.so (development link) missing"; fail=1; }
# The documented consumer recipe sets PKG_CONFIG_PATH=LIBDIR/pkgconfig (with a multiarch
# libdir, not PREFIX/lib/pkgconfig).
[ "$pc" = "$libdir/pkgconfig/gryphgen.pc" ] || { echo "FAIL: gryphgen.pc is at $pc, not in the libdir it names ($libdir/pkgconfig)"; fail=1; }
real_libdir=${libdir#"$dest"}

# The installed command: with -Drpath=true it carries an rpath to the installed library's
# real place; without, none (no build-tree path leaks), and it runs with LD_LIBRARY_PATH.
bindir=$dest$prefix/bin
if [ ! -x "$bindir/gryphgen" ]; then
    echo "FAIL: the gryphgen command was not installed in $bindir"; fail=1
else
    runpath=$(objdump -p "$bindir/gryphgen" | awk '$1 == "RUNPATH" || $1 == "RPATH" { print $2 }')
    if [ "$rpath" = true ]; then
        [ "$runpath" = "$real_libdir" ] || { echo "FAIL: -Drpath=true: gryphgen's rpath is '$runpath', wanted $real_libdir"; fail=1; }
    else
        [ -z "$runpath" ] || { echo "FAIL: gryphgen has an rpath '$runpath' without -Drpath=true"; fail=1; }
    fi
    if ! out=$(LD_LIBRARY_PATH=$libdir timeout 30 "$bindir/gryphgen" version 2>&1); then
        echo "FAIL: LD_LIBRARY_PATH=$libdir gryphgen version: $out"; fail=1
    fi
fi
# Every public header of the tree is installed (a header added to include/ but not to
# install_headers() would break hosts that include it).
incdir=$(PKG_CONFIG_PATH=$tmp/pc pkg-config --variable=includedir gryphgen)
for h in $(cd "$src/include" && find . -name '*.h' | sed 's|^\./||' | sort); do
    [ -f "$incdir/$h" ] || { echo "FAIL: public header include/$h is not installed"; fail=1; }
done

# Build the example as a user would: the compiler plus pkg-config, nothing from the tree.
flags=$(PKG_CONFIG_PATH=$tmp/pc pkg-config --cflags --libs gryphgen)
san=()
[ "$sanitize" != none ] && [ -n "$sanitize" ] && san=(-fsanitize="$sanitize")
# shellcheck disable=SC2086
if ! "$cc" -std=c11 -Wall -Wextra -Werror "${san[@]}" -o "$tmp/embed" "$src/examples/embed.c" \
        $flags -Wl,-rpath,"$libdir" 2>"$tmp/cc.log"; then
    echo "FAIL: examples/embed.c does not build with: $cc ... $flags"; sed 's/^/    /' "$tmp/cc.log"; exit 1
fi
needed=$(objdump -p "$tmp/embed" | awk '$1 == "NEEDED" && $2 ~ /gryphgen/ { print $2 }')
[ "$needed" = libgryphgen.so.1 ] || { echo "FAIL: embed links '$needed', wanted libgryphgen.so.1"; fail=1; }

rc=0
(cd "$tmp" && timeout 60 ./embed) >"$tmp/out" 2>"$tmp/err" || rc=$?
if [ "$rc" -ne 0 ]; then
    echo "FAIL: embed exited with $rc"; echo "  stdout:"; sed 's/^/    /' "$tmp/out"; echo "  stderr:"; sed 's/^/    /' "$tmp/err"; exit 1
fi
if ! grep -Eq '"status"[[:space:]]*:[[:space:]]*"passed"' "$tmp/out"; then
    echo "FAIL: embed did not print a passed result:"; sed 's/^/    /' "$tmp/out" "$tmp/err"; fail=1
fi
# It must resolve the installed library, not one from the build tree.
resolved=$(ldd "$tmp/embed" | awk '$1 == "libgryphgen.so.1" { print $3 }')
if [ "$resolved" != "$libdir/libgryphgen.so.1" ]; then
    echo "FAIL: embed resolves libgryphgen.so.1 to '$resolved', not the installed $libdir/libgryphgen.so.1"; fail=1
fi

# The other examples (custom backends through the sys/ vtables), built and run the same way:
# pkg-config only, sanitizer flags as the library's; each exits 0 only when it worked.
for ex in "$src"/examples/*.c; do
    name=$(basename "$ex" .c)
    [ "$name" = embed ] && continue
    # shellcheck disable=SC2086
    if ! "$cc" -std=c11 -Wall -Wextra -Werror "${san[@]}" -o "$tmp/$name" "$ex" \
            $flags -Wl,-rpath,"$libdir" 2>"$tmp/cc-$name.log"; then
        echo "FAIL: examples/$name.c does not build with: $cc ... $flags"; sed 's/^/    /' "$tmp/cc-$name.log"; fail=1
        continue
    fi
    rc=0
    (cd "$tmp" && timeout 60 "./$name") >"$tmp/out-$name" 2>"$tmp/err-$name" || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "FAIL: examples/$name exited with $rc"; echo "  stdout:"; sed 's/^/    /' "$tmp/out-$name"
        echo "  stderr:"; sed 's/^/    /' "$tmp/err-$name"; fail=1
    fi
done

# The Python binding, built the documented way with PKG_CONFIG_PATH at the prefix, imports
# the installed library with neither GRYPHGEN_LIBRARY nor LD_LIBRARY_PATH.
if [ "$sanitize" != none ] && [ -n "$sanitize" ]; then
    echo "check_install: the Python binding's check skipped (instrumented library)"
elif ! /usr/bin/python3 -m pip --version >/dev/null 2>&1; then
    echo "check_install: the Python binding's check skipped (no pip)"
elif ! PKG_CONFIG_PATH=$tmp/pc /usr/bin/python3 -m pip install --quiet --no-index \
        --root-user-action=ignore --disable-pip-version-check --target "$tmp/py" \
        "$src/bindings/python" >"$tmp/pip.log" 2>&1 </dev/null; then
    echo "FAIL: pip install bindings/python:"; sed 's/^/    /' "$tmp/pip.log"; fail=1
else
    loaded=$(cd "$tmp" && env -u GRYPHGEN_LIBRARY -u PKG_CONFIG_PATH PYTHONPATH="$tmp/py" \
        /usr/bin/python3 -c 'import gryphgen; print(gryphgen.library_path())' 2>&1) || true
    [ "$loaded" = "$libdir/libgryphgen.so.1" ] || { echo "FAIL: the installed binding loaded '$loaded', wanted $libdir/libgryphgen.so.1"; fail=1; }
fi

if [ "$fail" -ne 0 ]; then
    echo "check_install: FAILED"
    exit 1
fi
echo "check_install: ok: installed into $dest$prefix; embed and the other examples built with pkg-config only and ran"
