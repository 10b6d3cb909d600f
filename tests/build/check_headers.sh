#!/bin/bash
# check_headers.sh - compiles every public header on its own, as C11 and as C++11, with
# pedantic warnings as errors (a header must be self-contained and clean for any host), and
# checks that the umbrella header gryphgen.h never pulls in a backend header (gryphgen/sys/).
# Usage: check_headers.sh INCLUDE_DIR      (CC and CXX may name the compilers; default cc, c++)
set -euo pipefail

inc=${1:?usage: check_headers.sh INCLUDE_DIR}
cc=${CC:-cc}
cxx=${CXX:-c++}
for tool in "$cc" "$cxx"; do
    command -v "$tool" >/dev/null || { echo "check_headers: compiler '$tool' not found (install gcc and g++)"; exit 1; }
done
[ -f "$inc/gryphgen.h" ] || { echo "check_headers: no gryphgen.h in $inc"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

headers=$(cd "$inc" && ls gryphgen.h gryphgen/*.h gryphgen/sys/*.h 2>/dev/null)
fail=0
n=0
for h in $headers; do
    n=$((n + 1))
    # Included twice: the include guard must hold.
    printf '#include <%s>\n#include <%s>\n' "$h" "$h" >"$tmp/t.c"
    if ! "$cc" -std=c11 -pedantic -Wall -Wextra -Werror -fsyntax-only -I "$inc" "$tmp/t.c" 2>"$tmp/err"; then
        echo "FAIL: $h does not compile alone as C11:"; sed 's/^/    /' "$tmp/err"; fail=1
    fi
    if ! "$cxx" -std=c++11 -pedantic -Wall -Wextra -Werror -x c++ -fsyntax-only -I "$inc" "$tmp/t.c" 2>"$tmp/err"; then
        echo "FAIL: $h does not compile alone as C++11:"; sed 's/^/    /' "$tmp/err"; fail=1
    fi
done

# The umbrella must not reach gryphgen/sys/, directly or through another header: look at
# what the preprocessor actually opened.
printf '#include <gryphgen.h>\n' >"$tmp/u.c"
if ! "$cc" -std=c11 -E -I "$inc" "$tmp/u.c" >"$tmp/u.i" 2>"$tmp/err"; then
    echo "FAIL: gryphgen.h does not preprocess:"; sed 's/^/    /' "$tmp/err"; fail=1
elif grep -E '^# [0-9]+ "[^"]*gryphgen/sys/' "$tmp/u.i" | sed -E 's/^# [0-9]+ "([^"]*)".*/\1/' | sort -u >"$tmp/sys" && [ -s "$tmp/sys" ]; then
    echo "FAIL: the umbrella header gryphgen.h includes backend headers:"; sed 's/^/    /' "$tmp/sys"; fail=1
fi
# And every non-sys public header must be reachable from the umbrella.
for h in $headers; do
    case $h in gryphgen.h | gryphgen/sys/*) continue ;; esac
    grep -Eq "^# [0-9]+ \"[^\"]*/$h\"" "$tmp/u.i" || { echo "FAIL: gryphgen.h does not include $h"; fail=1; }
done

if [ "$fail" -ne 0 ]; then
    echo "check_headers: FAILED"
    exit 1
fi
echo "check_headers: ok: $n headers compile alone as C11 and C++11; gryphgen.h includes no sys/ header"
