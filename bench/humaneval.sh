#!/bin/bash
# humaneval.sh - what the pipeline costs over running the code alone. Runs the 164 HumanEval
# problems through `gryphgen eval --generator reference --jobs 2` (analysis, sandboxed
# execution, checkpoints in SQLite), and the same 164 programs as plain interpreter
# subprocesses 2 at a time (bench/plain_run.py), both with the same interpreter, the two
# alternating; the median and the best of 3 runs each, and the level the pipeline's jobs
# ran at (from its database). Target: with the default isolation (the strongest this host
# gives: every job in the namespace sandbox, forked from a zygote) or ISOLATION=namespaces,
# the pipeline's median at most 0.5x that of the plain, unisolated subprocesses; with a
# weaker ISOLATION, within 1.3x.
# Environment: BUILD (build dir, default build), HUMANEVAL (data file), GRYPHGEN_PYTHON
# (interpreter; default /usr/bin/python3 when it exists, since the sandbox's uid must reach
# it, else python3's sys.executable), RUNS (default 3), ISOLATION (passed to
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
if [ -z "${GRYPHGEN_PYTHON:-}" ] && [ -x /usr/bin/python3 ]; then
    py=/usr/bin/python3
else
    py=${GRYPHGEN_PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
fi
[ -x "$py" ] || { echo "humaneval: interpreter '$py' is not executable"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }

best_pipe=""
best_plain=""
all_pipe=""
all_plain=""
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
    all_pipe="$all_pipe $pipe"
    all_plain="$all_plain $plain"
    best_pipe=$(awk -v a="$pipe" -v b="${best_pipe:-$pipe}" 'BEGIN { print (a < b ? a : b) }')
    best_plain=$(awk -v a="$plain" -v b="${best_plain:-$plain}" 'BEGIN { print (a < b ? a : b) }')
done

median() {
    echo "$@" | tr ' ' '\n' | sed '/^$/d' | sort -n |
        awk '{ v[NR] = $1 }
             END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
med_pipe=$(median $all_pipe)
med_plain=$(median $all_plain)
# The level (and zygote use) the pipeline's jobs ran at, from the last run's attempts.
levels=$(/usr/bin/python3 - "$tmp/run$runs.db" <<'PY'
import collections, json, sqlite3, sys
c = collections.Counter()
for (rec,) in sqlite3.connect(sys.argv[1]).execute("SELECT record FROM attempts"):
    e = (json.loads(rec).get("execution") or {})
    c["%s%s" % (e.get("isolation", "?"), " + zygote" if e.get("zygote") else "")] += 1
print(", ".join("%s: %d" % kv for kv in sorted(c.items())) or "none")
PY
)
plain_passed=$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%d/%d" % (d["passed"], d["total"]))' "$tmp/plain$runs.json")
ratio=$(awk -v a="$med_pipe" -v b="$med_plain" 'BEGIN { printf "%.2f", a / b }')
best_ratio=$(awk -v a="$best_pipe" -v b="$best_plain" 'BEGIN { printf "%.2f", a / b }')
case "${ISOLATION:-}" in
    ''|namespaces) target=0.5 op="<=" ;;
    *) target=1.3 op="<=" ;;
esac
met=$(awk -v r="$ratio" -v t="$target" -v op="$op" \
      'BEGIN { ok = op == "<" ? r < t : r <= t; print (ok ? "met" : "MISSED") }')

echo
echo "gryphgen summary (last run):"
sed 's/^/  /' "$tmp/pipe$runs.out"
echo
echo "interpreter:     $py"
echo "plain passed:    $plain_passed"
echo "jobs ran at:     $levels"
echo "pipeline (median of $runs): $med_pipe s, best $best_pipe s  (gryphgen eval, whole command)"
echo "plain    (median of $runs): $med_plain s, best $best_plain s  (164 subprocesses, 2 at a time)"
echo "ratio pipeline/plain:    ${ratio}x (medians; best of each: ${best_ratio}x)"
echo "target: pipeline/plain $op ${target}x (isolation ${ISOLATION:-default}): $met"
