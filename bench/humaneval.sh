#!/bin/bash
# humaneval.sh - what the pipeline costs over running the code alone. Runs the 164 HumanEval
# problems through `gryphgen eval --generator reference --jobs 2` (analysis, sandboxed
# execution, checkpoints in SQLite), and the same 164 programs as plain interpreter
# subprocesses 2 at a time (bench/plain_run.py), both with the same interpreter, the two
# alternating; the median and the best of 3 runs each, and the level the pipeline's jobs
# ran at (from its database). Target: with the default isolation (the strongest this host
# gives: every job in the namespace sandbox, forked from a zygote) or ISOLATION=namespaces,
# the pipeline's median at most 0.5x that of the plain, unisolated subprocesses; with a
# weaker ISOLATION, within 1.3x. Each run also prints the CPU each side took (its processes,
# the sandboxed jobs included, through a cpuacct group of its own where cgroup v1 has one) and
# what the kernel's workers took meanwhile (machine-wide), and the medians of the CPU.
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
# The CPU each side takes, all the processes it starts included (the sandboxed jobs too): a
# cpuacct group of cgroup v1 per side run, when this host has one we may make; and the CPU the
# kernel's workers took meanwhile (where the kernel tears namespaces down; machine-wide, so
# other work on the host counts too). Timing on a shared host varies with its load; CPU much
# less so.
cg=""
if [ -w /sys/fs/cgroup/cpuacct/cgroup.procs ] &&
   mkdir "/sys/fs/cgroup/cpuacct/gg-humaneval-$$" 2>/dev/null; then
    cg=/sys/fs/cgroup/cpuacct/gg-humaneval-$$
fi
trap 'rm -rf "$tmp"; if [ -n "$cg" ]; then rmdir "$cg" 2>/dev/null || true; fi' EXIT
now() { date +%s.%N; }
# kworkers save FILE | kworkers since FILE: the kernel workers' CPU ticks, saved; then the
# seconds they took since (per thread, so workers that came or went count right).
kworkers() {
    /usr/bin/python3 - "$@" <<'PY'
import json, os, sys
ticks = {}
for p in os.listdir('/proc'):
    try:
        st = open('/proc/%s/stat' % p).read()
    except OSError:
        continue
    comm, rest = st[st.index('(') + 1:st.rindex(')')], st[st.rindex(')') + 2:].split()
    if comm.startswith('kworker') and rest[1] == '2':
        ticks[p] = int(rest[11]) + int(rest[12])
if sys.argv[1] == 'save':
    json.dump(ticks, open(sys.argv[2], 'w'))
else:
    before = json.load(open(sys.argv[2]))
    d = sum(max(t - before.get(p, 0), 0) for p, t in ticks.items())
    print('%.3f' % (d / os.sysconf('SC_CLK_TCK')))
PY
}
# in_group CMD...: runs CMD in the side's group (as is without one).
in_group() {
    if [ -n "$cg" ]; then
        echo 0 >"$cg/cpuacct.usage"
        (echo "$BASHPID" >"$cg/cgroup.procs" && "$@")
    else
        "$@"
    fi
}
group_cpu() {
    if [ -n "$cg" ]; then awk '{ printf "%.3f", $1 / 1e9 }' "$cg/cpuacct.usage"; else echo "-"; fi
}

best_pipe=""
best_plain=""
all_pipe=""
all_plain=""
cpu_pipe=""
cpu_plain=""
pipeline() {
    zcat -f "$data" | "$gg" eval --generator reference --jobs 2 --python "$py" \
        ${ISOLATION:+--isolation "$ISOLATION"} --db "$1" --quiet -
}
for i in $(seq 1 "$runs"); do
    # A fresh database each run: a reused one would resume the finished tasks instantly.
    kworkers save "$tmp/kw"
    t0=$(now)
    in_group pipeline "$tmp/run$i.db" >"$tmp/pipe$i.out" 2>&1 || {
        echo "humaneval: gryphgen eval failed (run $i):"; cat "$tmp/pipe$i.out"; exit 1; }
    t1=$(now)
    cpu=$(group_cpu)
    kw=$(kworkers since "$tmp/kw")
    pipe=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    kworkers save "$tmp/kw"
    in_group /usr/bin/python3 "$repo/bench/plain_run.py" --python "$py" --jobs 2 "$data" \
        >"$tmp/plain$i.json"
    pcpu=$(group_cpu)
    pkw=$(kworkers since "$tmp/kw")
    plain=$(/usr/bin/python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["wall_s"])' "$tmp/plain$i.json")
    echo "run $i: pipeline ${pipe} s (cpu ${cpu} s, kernel workers ${kw} s), plain ${plain} s (cpu ${pcpu} s, kernel workers ${pkw} s)"
    cpu_pipe="$cpu_pipe $cpu"
    cpu_plain="$cpu_plain $pcpu"
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
if [ -n "$cg" ]; then
    mc_pipe=$(median $cpu_pipe)
    mc_plain=$(median $cpu_plain)
    cpu_line="cpu      (median of $runs): pipeline $mc_pipe s, plain $mc_plain s, ratio $(awk -v a="$mc_pipe" -v b="$mc_plain" 'BEGIN { printf "%.2f", a / b }')x  (each side's processes, the jobs included)"
else
    cpu_line="cpu:     not measured (no cgroup v1 cpuacct group could be made here)"
fi
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
echo "$cpu_line"
echo "target: pipeline/plain $op ${target}x (isolation ${ISOLATION:-default}): $met"
