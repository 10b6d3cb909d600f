#!/bin/bash
# selftest.sh - proves that check_symbols.sh, check_headers.sh, check_configuration.sh and
# check_protocol_literals.sh can fail: it builds small shared libraries, header trees and
# source trees that break each rule on purpose and expects each checker to reject them
# naming the culprit, and to accept the well-formed ones.
# Usage: selftest.sh DIR_OF_THE_CHECKERS
set -euo pipefail

here=${1:?usage: selftest.sh DIR}
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
checks=0

expect() { # expect pass|fail NAME PATTERN COMMAND...: runs it, checks outcome and output
    local want=$1 name=$2 pattern=$3 rc=0
    shift 3
    checks=$((checks + 1))
    "$@" >"$tmp/out" 2>&1 || rc=$?
    if [ "$want" = pass ] && [ "$rc" -ne 0 ]; then
        echo "FAIL: $name: expected success, got $rc:"; sed 's/^/    /' "$tmp/out"; fail=1
    elif [ "$want" = fail ] && [ "$rc" -eq 0 ]; then
        echo "FAIL: $name: expected failure, got success:"; sed 's/^/    /' "$tmp/out"; fail=1
    elif [ -n "$pattern" ] && ! grep -q -- "$pattern" "$tmp/out"; then
        echo "FAIL: $name: output lacks '$pattern':"; sed 's/^/    /' "$tmp/out"; fail=1
    fi
}

# ---- check_symbols ----
cat >"$tmp/map" <<'MAP'
/* two nodes, as after a second release */
GRYPHGEN_1.0 {
  global:
    gg_one;
    gg_two;
  local:
    *;
};
GRYPHGEN_1.1 {
  global:
    gg_three;
} GRYPHGEN_1.0;
MAP
so() { # so NAME MAPFILE SOURCE: builds a shared library
    printf '%s\n' "$3" >"$tmp/$1.c"
    "$cc" -shared -fPIC -o "$tmp/$1.so" "$tmp/$1.c" -Wl,--version-script="$2" -Wl,-soname,"$1.so"
}
good='int gg_one(void){return 1;} int gg_two(void){return 2;} int gg_three(void){return 3;}'
so good "$tmp/map" "$good"
expect pass "symbols: well-formed library" "ok:" bash "$here/check_symbols.sh" "$tmp/good.so" "$tmp/map"

so missing "$tmp/map" 'int gg_one(void){return 1;} int gg_three(void){return 3;}'
expect fail "symbols: listed but not exported" "gg_two" bash "$here/check_symbols.sh" "$tmp/missing.so" "$tmp/map"

# A library whose map exports a non-gg symbol and an unlisted gg symbol, checked against
# the reference map.
cat >"$tmp/loose.map" <<'MAP'
GRYPHGEN_1.0 { global: gg_one; gg_two; helper; gg_extra; local: *; };
GRYPHGEN_1.1 { global: gg_three; } GRYPHGEN_1.0;
MAP
so loose "$tmp/loose.map" "$good int helper(void){return 4;} int gg_extra(void){return 5;}"
expect fail "symbols: non-gg export" "helper" bash "$here/check_symbols.sh" "$tmp/loose.so" "$tmp/map"
expect fail "symbols: unlisted export" "gg_extra" bash "$here/check_symbols.sh" "$tmp/loose.so" "$tmp/map"

# gg_three in the wrong node.
cat >"$tmp/wrongnode.map" <<'MAP'
GRYPHGEN_1.0 { global: gg_one; gg_two; gg_three; local: *; };
GRYPHGEN_1.1 { global: gg_unused_marker; } GRYPHGEN_1.0;
MAP
so wrongnode "$tmp/wrongnode.map" "$good"
expect fail "symbols: wrong version node" "gg_three: version 'GRYPHGEN_1.0'" \
    bash "$here/check_symbols.sh" "$tmp/wrongnode.so" "$tmp/map"

# No version script at all: nothing is versioned and everything is exported.
"$cc" -shared -fPIC -o "$tmp/plain.so" "$tmp/good.c"
expect fail "symbols: unversioned library" "wrong version node" bash "$here/check_symbols.sh" "$tmp/plain.so" "$tmp/map"

# ---- check_headers ----
mk() { # mk DIR: a clean minimal public header tree
    mkdir -p "$1/gryphgen/sys"
    printf '#ifndef A_H\n#define A_H\nint gg_a(void);\n#endif\n' >"$1/gryphgen/a.h"
    printf '#ifndef S_H\n#define S_H\n#include "../a.h"\nint gg_s(void);\n#endif\n' >"$1/gryphgen/sys/s.h"
    printf '#ifndef U_H\n#define U_H\n#include "gryphgen/a.h"\n#endif\n' >"$1/gryphgen.h"
}
mk "$tmp/h_ok"
expect pass "headers: clean tree" "ok:" bash "$here/check_headers.sh" "$tmp/h_ok"

mk "$tmp/h_sys"
printf '#ifndef B_H\n#define B_H\n#include "sys/s.h"\n#endif\n' >"$tmp/h_sys/gryphgen/b.h"
printf '#ifndef U_H\n#define U_H\n#include "gryphgen/a.h"\n#include "gryphgen/b.h"\n#endif\n' >"$tmp/h_sys/gryphgen.h"
expect fail "headers: umbrella reaches sys/ indirectly" "gryphgen/sys/s.h" bash "$here/check_headers.sh" "$tmp/h_sys"

mk "$tmp/h_cxx"
printf '#ifndef C_H\n#define C_H\nstatic inline int *gg_c(void *p) { return p; }\n#endif\n' >"$tmp/h_cxx/gryphgen/c.h"
printf '#ifndef U_H\n#define U_H\n#include "gryphgen/a.h"\n#include "gryphgen/c.h"\n#endif\n' >"$tmp/h_cxx/gryphgen.h"
expect fail "headers: not valid C++" "c.h does not compile alone as C++11" bash "$here/check_headers.sh" "$tmp/h_cxx"

mk "$tmp/h_alone"
printf '#ifndef D_H\n#define D_H\nstatic inline size_t gg_d(void) { return 0; }\n#endif\n' >"$tmp/h_alone/gryphgen/d.h"
printf '#ifndef U_H\n#define U_H\n#include <stddef.h>\n#include "gryphgen/a.h"\n#include "gryphgen/d.h"\n#endif\n' >"$tmp/h_alone/gryphgen.h"
expect fail "headers: not self-contained" "d.h does not compile alone as C11" bash "$here/check_headers.sh" "$tmp/h_alone"

mk "$tmp/h_guard"
printf 'int gg_e(void) { return 0; }\n' >"$tmp/h_guard/gryphgen/e.h"
printf '#ifndef U_H\n#define U_H\n#include "gryphgen/a.h"\n#include "gryphgen/e.h"\n#endif\n' >"$tmp/h_guard/gryphgen.h"
expect fail "headers: no include guard" "e.h does not compile" bash "$here/check_headers.sh" "$tmp/h_guard"

mk "$tmp/h_orphan"
printf '#ifndef F_H\n#define F_H\nint gg_f(void);\n#endif\n' >"$tmp/h_orphan/gryphgen/f.h"
expect fail "headers: public header missing from the umbrella" "does not include gryphgen/f.h" \
    bash "$here/check_headers.sh" "$tmp/h_orphan"

# ---- check_configuration ----
mkdir -p "$tmp/conf/lib" "$tmp/conf/cli" "$tmp/conf/docs"
printf 'const char *a(void) { return getenv("GRYPHGEN_ALPHA"); }\n' >"$tmp/conf/lib/a.c"
printf 'static const char *const n = "GRYPHGEN_BETA";\n' >"$tmp/conf/cli/b.c"
printf '| alpha | `GRYPHGEN_ALPHA` |\n| beta | `GRYPHGEN_BETA` |\n' >"$tmp/conf/docs/configuration.md"
expect pass "configuration: every variable listed" "ok: 2" \
    bash "$here/check_configuration.sh" "$tmp/conf"
printf '| alpha | `GRYPHGEN_ALPHA` |\n| beta, unquoted: GRYPHGEN_BETA |\n' >"$tmp/conf/docs/configuration.md"
expect fail "configuration: a variable missing from the doc" "GRYPHGEN_BETA (read in cli/b.c" \
    bash "$here/check_configuration.sh" "$tmp/conf"

# ---- check_protocol_literals ----
mkdir -p "$tmp/ggp/lib/orchestrator" "$tmp/ggp/cli"
printf 'static const char h[] = "{\\"ggp\\":1,\\"t\\":\\"hb\\"}";\n' >"$tmp/ggp/lib/orchestrator/protocol_encode.c"
printf 'int w(void) { return 0; }\n' >"$tmp/ggp/lib/orchestrator/worker.c"
expect pass "protocol: the envelope only in the codec" "ok:" \
    bash "$here/check_protocol_literals.sh" "$tmp/ggp"
printf 'static const char h[] = "{\\"ggp\\":1,\\"t\\":\\"wake\\"}";\n' >"$tmp/ggp/cli/x.c"
expect fail "protocol: an envelope written by hand" "cli/x.c:1" \
    bash "$here/check_protocol_literals.sh" "$tmp/ggp"
rm "$tmp/ggp/cli/x.c"
printf 'void c(cJSON *m) { cJSON_AddStringToObject(m, "t", "cancel"); }\n' >"$tmp/ggp/lib/orchestrator/worker.c"
expect fail "protocol: a type set with cJSON" "lib/orchestrator/worker.c:1" \
    bash "$here/check_protocol_literals.sh" "$tmp/ggp"
printf 'int e(void) { return 0; }\n' >"$tmp/ggp/lib/orchestrator/protocol_encode.c"
expect fail "protocol: a codec that writes no envelope" "wrong root" \
    bash "$here/check_protocol_literals.sh" "$tmp/ggp"

echo "selftest: $checks checks, $([ "$fail" -eq 0 ] && echo 0 || echo some) failed"
exit "$fail"
