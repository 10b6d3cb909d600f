#!/bin/bash
# selftest.sh - proves check_symbols_baseline.sh can fail: against copies of the recorded list
# with a symbol removed (an unrecorded export), a symbol added (a missing one) and a version
# node changed, it must fail naming the symbol; against the list itself it must pass.
# The lists of every release (symbols-1.0.txt, symbols-1.1.txt...) are taken together.
# Usage: selftest.sh LIBRARY BASELINE [BASELINE...]
set -euo pipefail

lib=${1:?usage: selftest.sh LIBRARY BASELINE [BASELINE...]}
: "${2:?baseline}"
shift
check=$(dirname "$0")/check_symbols_baseline.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat "$@" >"$tmp/all"
base=$tmp/all
fail=0

expect_fail() { # name, baseline file, text the output must contain
    local out rc=0
    out=$(bash "$check" "$lib" "$2" 2>&1) || rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "FAIL: $1: the check passed"; fail=1
    elif ! grep -qF -- "$3" <<<"$out"; then
        echo "FAIL: $1: output lacks '$3':"; sed 's/^/    /' <<<"$out"; fail=1
    else
        echo "ok: $1"
    fi
}

bash "$check" "$lib" "$base" >/dev/null || { echo "FAIL: the recorded list itself does not pass"; fail=1; }
grep -v '^gg_orchestrator_cancel ' "$base" >"$tmp/removed"
expect_fail "unrecorded export" "$tmp/removed" "gg_orchestrator_cancel"
{ cat "$base"; echo "gg_vanished GRYPHGEN_1.0"; } >"$tmp/added"
expect_fail "missing symbol" "$tmp/added" "gg_vanished"
sed 's/^gg_free GRYPHGEN_1.0$/gg_free GRYPHGEN_0.9/' "$base" >"$tmp/moved"
expect_fail "changed version node" "$tmp/moved" "gg_free: recorded GRYPHGEN_0.9, now GRYPHGEN_1.0"
printf '# comments only\n' >"$tmp/empty"
expect_fail "empty list" "$tmp/empty" "lists no symbols"
[ "$fail" -eq 0 ] && echo "selftest: ok"
exit "$fail"
