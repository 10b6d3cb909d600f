#!/bin/bash
# humaneval.sh - what the pipeline costs over running the code alone. Runs the 164 HumanEval
# problems through `gryphgen eval --generator reference --jobs 2` (analysis, sandboxed
# execution, checkpoints in SQLite), and the same 164 programs as plain interpreter
# subprocesses 2 at a time (bench/plain_run.py), both with the same interpreter; best of 3
# runs each. Target: the pipeline within 1.3x of plain; with ISOLATION=namespaces (every job
# in the sandbox, forked from a zygote) below 1.0x of the plain, unisolated subprocesses.
# Environment: BUILD (build dir, default build), HUMANEVAL (data file), GRYPHGEN_PYTHON
# (interpreter; default python3's sys.executable), RUNS (default 3), ISOLATION (passed to
# `gryphgen eval --isolation`, e.g. namespaces; default: the command's default).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$repo/build}
data=${HUMANEVAL:-$repo/../shared/data/HumanEval.jsonl.gz}
runs=${RUNS:-3}
[ -f "$data" ] || { echo "humaneval: no data at $data (set HUMANEVAL)"; exit 1; }
case "$runs" in ''|*[!0-9]*|0) echo "humaneval: RUNS must be a whole number from 1"; exit 1 ;; esac

# Build (or bring up to date) the command.
[ -f "$build/build.ninja" ] || meson setup "$build" "$repo" >/dev/null || exit 1
# Only the command: a test that does not build must not stop a benchmark.
if ! log=$(ninja -C "$build" cli/gryphgen 2>&1); then
    echo "humaneval: building gryphgen failed:"; echo "$log"; exit 1
fi
gg=$build/cli/gryphgen
[ -x "$gg" ] || { echo "humaneval: $gg was not built"; exit 1; }

# One interpreter for both sides, resolved once (a version manager's shim is bypassed).
py=${GRYPHGEN_PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
[ -x "$py" ] || { echo "humaneval: interpreter '$py' is not executable"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }

best_pipe=""
best_plain=""
for i in $(seq 1 "$runs"); do
    # A fresh database each run: a reused one would resume the finished tasks instantly.
    t0=$(now)
    zcat -f "$data" | "$gg" eval --generator reference --jobs 2 --python "$py" \
        ${ISOLATION:+--isolation "$ISOLATION"} \
        --db "$tmp/run$i.db" --quiet - >"$tmp/pipe$i.out" 2>&1 || {
        echo "humaneval: gryphgen eval failed (run $i):"; cat "$tmp/pipe$i.out"; exit 1; }
    t1=$(now)
    pipe=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    /usr/bin/python3 "$repo/bench/plain_run.py" --python "$py" --jobs 2 "$data" >"$tmp/plain$i.json"
    plain=$(/usr/bin/python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["wall_s"])' "$tmp/plain$i.json")
    echo "run $i: pipeline ${pipe} s, plain ${plain} s"
    best_pipe=$(awk -v a="$pipe" -v b="${best_pipe:-$pipe}" 'BEGIN { print (a < b ? a : b) }')
    best_plain=$(awk -v a="$plain" -v b="${best_plain:-$plain}" 'BEGIN { print (a < b ? a : b) }')
done

plain_passed=$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%d/%d" % (d["passed"], d["total"]))' "$tmp/plain$runs.json")
ratio=$(awk -v a="$best_pipe" -v b="$best_plain" 'BEGIN { printf "%.2f", a / b }')
if [ "${ISOLATION:-}" = namespaces ]; then target=1.0 op="<"; else target=1.3 op="<="; fi
met=$(awk -v r="$ratio" -v t="$target" -v op="$op" \
      'BEGIN { ok = op == "<" ? r < t : r <= t; print (ok ? "met" : "MISSED") }')

echo
echo "gryphgen summary (last run):"
sed 's/^/  /' "$tmp/pipe$runs.out"
echo
echo "interpreter:     $py"
echo "plain passed:    $plain_passed"
echo "pipeline (best of $runs): $best_pipe s  (gryphgen eval, whole command)"
echo "plain    (best of $runs): $best_plain s  (164 subprocesses, 2 at a time)"
echo "ratio pipeline/plain:    ${ratio}x"
echo "target: pipeline/plain $op ${target}x${ISOLATION:+ (isolation $ISOLATION)}: $met"
