#!/bin/bash
# record_baseline.sh - records the ABI baseline of a release: builds the library from the
# source tree with -g -Og into a temporary build directory, dumps its public ABI with
# abi-dumper into tests/abi/gryphgen-VERSION.dump and prints its exported symbols (the lines
# of tests/abi/symbols-VERSION.txt). Run it once, on the release's tagged tree; never to make
# a failing check pass.
# Usage: tests/abi/record_baseline.sh [VERSION]   (default: the project's version)
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
projver=$(sed -n "s/^ *version *: *'\([0-9.]*\)'.*/\1/p" "$src/meson.build" | head -n1)
version=${1:-$projver}
[ -n "$version" ] || { echo "record_baseline: cannot tell the version"; exit 1; }
short=${version%.*}
command -v abi-dumper >/dev/null || { echo "record_baseline: install abi-dumper"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# -Og may warn where -O2 does not; a baseline build is no place for -Werror.
meson setup "$tmp/build" "$src" -Dbuildtype=debug -Doptimization=g -Dwerror=false >"$tmp/setup.log"
ninja -C "$tmp/build" "lib/libgryphgen.so.$projver" >"$tmp/build.log"
abi-dumper "$tmp/build/lib/libgryphgen.so.1" -o "$src/tests/abi/gryphgen-$short.dump" \
    -lver "$version" -public-headers "$src/include" >"$tmp/dump.log"
echo "record_baseline: wrote tests/abi/gryphgen-$short.dump; exported symbols:" >&2
"$src/tests/abi/check_symbols_baseline.sh" --print "$tmp/build/lib/libgryphgen.so.1"
