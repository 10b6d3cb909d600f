#!/bin/bash
# check_symbols_baseline.sh - compares the dynamic symbols libgryphgen exports, with their
# version nodes (objdump -T), against the recorded lists of released symbols (symbols-1.0.txt,
# then one list per later release, symbols-1.1.txt...: "symbol VERSION_NODE" per line; the
# lists are read together). Fails when a recorded symbol is missing, when a
# symbol changed its version node, and when an exported symbol is not recorded (a new
# symbol must be added to the list, in a new node of lib/libgryphgen.map, deliberately).
# Usage: check_symbols_baseline.sh LIBRARY BASELINE [BASELINE...]
#        check_symbols_baseline.sh --print LIBRARY   (the list to record, on stdout)
set -euo pipefail

print_only=0
if [ "${1:-}" = --print ]; then
    print_only=1
    shift
fi
lib=${1:?usage: check_symbols_baseline.sh [--print] LIBRARY [BASELINE]}
command -v objdump >/dev/null || { echo "check_symbols_baseline: objdump not found (install binutils)"; exit 1; }
[ -f "$lib" ] || { echo "check_symbols_baseline: no library at $lib"; exit 1; }

# Defined dynamic symbols as "name version"; version node definitions (*ABS*) are not symbols.
exported() {
    objdump -T "$1" | awk '/^[0-9a-f]+ / && $0 !~ /\*UND\*/ && $0 !~ /\*ABS\*/ {
        name = $NF; ver = $(NF - 1); gsub(/[()]/, "", ver); print name, ver }' | LC_ALL=C sort -u
}

if [ "$print_only" -eq 1 ]; then
    exported "$lib"
    exit 0
fi
: "${2:?usage: check_symbols_baseline.sh LIBRARY BASELINE [BASELINE...]}"
shift
for f in "$@"; do
    [ -f "$f" ] || { echo "check_symbols_baseline: no baseline at $f"; exit 1; }
done
base="$*"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
exported "$lib" >"$tmp/now"
{ cat "$@" | grep -Ev '^[[:space:]]*(#|$)' || true; } | awk '{ print $1, $2 }' | LC_ALL=C sort -u >"$tmp/base"
[ -s "$tmp/base" ] || { echo "check_symbols_baseline: $base lists no symbols"; exit 1; }
[ -s "$tmp/now" ] || { echo "check_symbols_baseline: $lib exports no symbols"; exit 1; }

cut -d' ' -f1 "$tmp/now" | LC_ALL=C sort -u >"$tmp/now_names"
cut -d' ' -f1 "$tmp/base" | LC_ALL=C sort -u >"$tmp/base_names"
fail=0
missing=$(LC_ALL=C comm -23 "$tmp/base_names" "$tmp/now_names")
if [ -n "$missing" ]; then
    echo "FAIL: released symbols missing from $(basename "$lib"):"; echo "$missing" | sed 's/^/    /'; fail=1
fi
added=$(LC_ALL=C comm -13 "$tmp/base_names" "$tmp/now_names")
if [ -n "$added" ]; then
    echo "FAIL: exported symbols not recorded in $base (record them, in a new version node):"
    echo "$added" | sed 's/^/    /'; fail=1
fi
changed=$(LC_ALL=C join "$tmp/base" "$tmp/now" | awk '$2 != $3 { print $1 ": recorded " $2 ", now " $3 }')
if [ -n "$changed" ]; then
    echo "FAIL: symbols whose version node changed:"; echo "$changed" | sed 's/^/    /'; fail=1
fi
if [ "$fail" -ne 0 ]; then
    echo "check_symbols_baseline: FAILED against $base"
    exit 1
fi
echo "check_symbols_baseline: ok: $(wc -l <"$tmp/now") symbols, the same names and version nodes as $base"
