#!/bin/bash
# check_abi_compat.sh - compares the ABI of the built libgryphgen with the recorded baseline
# of the last release (gryphgen-1.0.dump, made by record_baseline.sh) using abi-dumper and
# abi-compliance-checker (Debian packages of the same names). Fails on any binary or source
# compatibility problem of the public API (include/gryphgen). Exits 77 (skipped) when the tools
# are not installed or the library has no debug information (abi-dumper reads DWARF).
# Usage: check_abi_compat.sh LIBRARY INCLUDE_DIR BASELINE_DUMP [REPORT_DIR]
set -euo pipefail

lib=${1:?usage: check_abi_compat.sh LIBRARY INCLUDE_DIR BASELINE_DUMP [REPORT_DIR]}
inc=${2:?include dir}
base=${3:?baseline dump}
reports=${4:-}
for tool in abi-dumper abi-compliance-checker; do
    if ! command -v "$tool" >/dev/null; then
        echo "check_abi_compat: SKIP: '$tool' is not installed (apt-get install abi-dumper abi-compliance-checker)"
        exit 77
    fi
done
[ -f "$lib" ] || { echo "check_abi_compat: no library at $lib"; exit 1; }
[ -f "$base" ] || { echo "check_abi_compat: no baseline dump at $base (tests/abi/record_baseline.sh makes it)"; exit 1; }
lib=$(readlink -f "$lib")
base=$(readlink -f "$base")
inc=$(readlink -f "$inc")
# Read the whole listing first: `grep -q` closing the pipe early would fail it under pipefail.
sections=$(objdump -h "$lib")
if ! grep -q '\.debug_info' <<<"$sections"; then
    echo "check_abi_compat: SKIP: $lib has no debug information (build with -g, e.g. buildtype debugoptimized)"
    exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
if ! abi-dumper "$lib" -o current.dump -lver current -public-headers "$inc" >dumper.log 2>&1; then
    echo "FAIL: abi-dumper could not dump $lib:"; sed 's/^/    /' dumper.log; exit 1
fi
rc=0
abi-compliance-checker -l gryphgen -old "$base" -new current.dump -report-path report.html \
    >acc.log 2>&1 || rc=$?
if [ -n "$reports" ] && [ -d "$reports" ]; then
    cp report.html "$reports/abi-compat-report.html" 2>/dev/null || true
fi
if [ "$rc" -ne 0 ]; then
    echo "FAIL: the ABI of $lib is not compatible with the baseline $(basename "$base") (exit $rc):"
    sed 's/^/    /' acc.log
    # The HTML report, reduced to the lines that name a problem.
    if [ -f report.html ]; then
        echo "  problems:"
        sed -e 's/<[^>]*>/ /g' report.html | tr -s ' ' | grep -Ei 'changed|removed|added|size of' \
            | grep -v '^ *$' | head -n 40 | sed 's/^/    /'
    fi
    [ -n "$reports" ] && echo "  full report: $reports/abi-compat-report.html"
    exit 1
fi
grep -E 'compatibility' acc.log | sed 's/^/check_abi_compat: /'
echo "check_abi_compat: ok: $(basename "$lib") is binary- and source-compatible with $(basename "$base")"
