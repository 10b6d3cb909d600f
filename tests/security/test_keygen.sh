#!/bin/bash
# test_keygen.sh - `gryphgen keygen`: writes PREFIX.key (0600, public + secret) and
# PREFIX.pub (0644, public only), prints the public key, never overwrites, rejects bad usage.
# Usage: test_keygen.sh GRYPHGEN
set -uo pipefail
gg=${1:?usage: test_keygen.sh GRYPHGEN}
gg=$(cd "$(dirname "$gg")" && pwd)/$(basename "$gg") # absolute: one check runs elsewhere
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then :; else echo "FAIL: $what"; fail=1; fi
}

out=$("$gg" keygen --out "$tmp/node" 2>"$tmp/err"); rc=$?
check "keygen exits 0 (got $rc: $(cat "$tmp/err"))" test "$rc" -eq 0
check "prints a 40-character key (got '$out')" test "${#out}" -eq 40
check ".key is mode 600" test "$(stat -c %a "$tmp/node.key")" = 600
check ".pub is mode 644" test "$(stat -c %a "$tmp/node.pub")" = 644
check ".key holds the printed public key" grep -qxF "public: $out" "$tmp/node.key"
check ".key holds a secret" grep -qE '^secret: .{40}$' "$tmp/node.key"
check ".pub holds the public key only" test "$(cat "$tmp/node.pub")" = "public: $out"
check "stderr names the files" grep -q "node.key" "$tmp/err"

before=$(cat "$tmp/node.key")
"$gg" keygen --out "$tmp/node" >"$tmp/out2" 2>"$tmp/err2"; rc=$?
check "a second keygen on the same prefix exits 2 (got $rc)" test "$rc" -eq 2
check "and says the file exists" grep -q "already exists" "$tmp/err2"
check "and leaves the key alone" test "$(cat "$tmp/node.key")" = "$before"
check "and prints no key" test ! -s "$tmp/out2"

"$gg" keygen --bogus >/dev/null 2>"$tmp/err3"; rc=$?
check "an unknown option exits 2 (got $rc)" test "$rc" -eq 2
"$gg" keygen --out >/dev/null 2>&1; rc=$?
check "--out without a value exits 2 (got $rc)" test "$rc" -eq 2
"$gg" keygen --out "$tmp/missing-dir/x" >/dev/null 2>"$tmp/err4"; rc=$?
check "an unwritable prefix exits 1 (got $rc)" test "$rc" -eq 1
check "and says why" grep -q "cannot create" "$tmp/err4"
(cd "$tmp" && "$gg" keygen >/dev/null 2>&1); rc=$?
check "the default prefix is gryphgen (rc $rc)" test -f "$tmp/gryphgen.key" -a -f "$tmp/gryphgen.pub"

[ "$fail" -eq 0 ] && echo "keygen: all checks passed"
exit "$fail"
