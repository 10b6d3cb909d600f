#!/bin/bash
# check_symbols.sh - checks the ABI surface of libgryphgen.so against lib/libgryphgen.map:
# every defined dynamic symbol starts with gg_ and is listed in the map, every symbol the map
# lists is exported, and each carries the version node the map puts it in (GRYPHGEN_1.0, ...).
# Usage: check_symbols.sh LIBRARY MAPFILE
set -euo pipefail

lib=${1:?usage: check_symbols.sh LIBRARY MAPFILE}
map=${2:?usage: check_symbols.sh LIBRARY MAPFILE}
for tool in nm objdump; do
    command -v "$tool" >/dev/null || { echo "check_symbols: '$tool' not found (install binutils)"; exit 1; }
done
[ -f "$lib" ] || { echo "check_symbols: no library at $lib"; exit 1; }
[ -f "$map" ] || { echo "check_symbols: no version script at $map"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The map as "symbol node" lines: symbols between 'global:' and 'local:' (or the node's end)
# of each node. C comments are removed first.
sed -e 's|/\*.*\*/||g' -e '/\/\*/,/\*\//d' "$map" | awk '
    /^[ \t]*[A-Za-z_][A-Za-z0-9_.]*[ \t]*\{/ { node = $1; sub(/\{.*/, "", node); inglobal = 0; next }
    /global:/ { inglobal = 1; next }
    /local:/  { inglobal = 0; next }
    /\}/      { inglobal = 0; node = ""; next }
    inglobal && node != "" {
        line = $0; gsub(/[ \t]/, "", line)
        n = split(line, parts, ";")
        for (i = 1; i <= n; i++) if (parts[i] != "") print parts[i], node
    }' | sort -u >"$tmp/map"
nodes=$(grep -E '^[ \t]*[A-Za-z_][A-Za-z0-9_.]*[ \t]*\{' "$map" | sed -E 's/^[ \t]*([A-Za-z0-9_.]+).*/\1/' | sort -u)
if [ ! -s "$tmp/map" ]; then
    echo "check_symbols: no symbols found in $map"
    exit 1
fi

# Defined dynamic symbols, without their @@VERSION suffix; the version nodes themselves
# appear as absolute (A) symbols and are not functions.
nm -D --defined-only "$lib" | awk '$2 != "A" { print $3 }' | sed 's/@.*//' | sort -u >"$tmp/defined"
# objdump -T: defined symbols (not *UND*) as "symbol version"; a hidden version prints in ().
objdump -T "$lib" | awk '/^[0-9a-f]+ / && $0 !~ /\*UND\*/ && $0 !~ /\*ABS\*/ {
        name = $NF; ver = $(NF - 1); gsub(/[()]/, "", ver); print name, ver }' | sort -u >"$tmp/versions"

fail=0
report() { # title, file of offending lines
    if [ -s "$2" ]; then
        echo "FAIL: $1:"
        sed 's/^/    /' "$2"
        fail=1
    fi
}

grep -v '^gg_' "$tmp/defined" >"$tmp/bad_prefix" || true
report "exported symbols without the gg_ prefix" "$tmp/bad_prefix"

cut -d' ' -f1 "$tmp/map" | sort -u >"$tmp/map_names"
comm -23 "$tmp/defined" "$tmp/map_names" >"$tmp/unlisted"
report "exported symbols not listed in $(basename "$map")" "$tmp/unlisted"

comm -13 "$tmp/defined" "$tmp/map_names" >"$tmp/missing"
report "symbols listed in $(basename "$map") but not exported by $(basename "$lib")" "$tmp/missing"

# Each listed and exported symbol must carry its node's version.
: >"$tmp/wrong_version"
while read -r sym node; do
    got=$(awk -v s="$sym" '$1 == s { print $2 }' "$tmp/versions" | head -n1)
    if grep -qx "$sym" "$tmp/defined" && [ "$got" != "$node" ]; then
        echo "$sym: version '${got:-none}', the map says '$node'" >>"$tmp/wrong_version"
    fi
done <"$tmp/map"
report "symbols with the wrong version node (objdump -T)" "$tmp/wrong_version"

# Every node of the map must be defined in the library (objdump -p lists version definitions).
: >"$tmp/nodes_missing"
# (Read into a file first: grep -q stops at its first match, and objdump writing on into the
# closed pipe would fail the pipeline under pipefail.)
objdump -p "$lib" >"$tmp/private_headers"
for n in $nodes; do
    grep -Eq "[[:space:]]$n\$" "$tmp/private_headers" || echo "$n" >>"$tmp/nodes_missing"
done
report "version nodes of the map not defined in the library" "$tmp/nodes_missing"

total=$(wc -l <"$tmp/defined")
listed=$(wc -l <"$tmp/map")
if [ "$fail" -ne 0 ]; then
    echo "check_symbols: FAILED ($total exported, $listed listed in the map)"
    exit 1
fi
echo "check_symbols: ok: $total exported symbols, all gg_, all listed and versioned ($(echo $nodes))"
