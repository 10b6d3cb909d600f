#!/bin/bash
# memory.sh - does gryphgen's memory stay flat as a task set grows? Generates 1,000 and 10,000
# trivial Python tasks (replay candidate `def f(): return 1`, test `assert f() == 1`), runs
# `gryphgen eval` on each under /usr/bin/time -v with a fresh database, and prints both peak
# resident set sizes and their ratio. Target: the 10,000-task peak within 20% of the
# 1,000-task peak.
# /usr/bin/time reports the largest of gryphgen and its waited-for children (the Python jobs,
# ~10 MB each), so the peak of gryphgen's own process (VmHWM, sampled from /proc) is printed
# as well.
# Environment: BUILD (build dir, default build), GRYPHGEN_PYTHON, JOBS (default 2),
# SIZES (default "1000 10000").
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$repo/build}
jobs=${JOBS:-2}
sizes=${SIZES:-"1000 10000"}
[ -x /usr/bin/time ] || { echo "memory: /usr/bin/time is missing (apt-get install time)"; exit 1; }

[ -f "$build/build.ninja" ] || meson setup "$build" "$repo" >/dev/null || exit 1
# Only the command: a test that does not build must not stop a benchmark.
if ! log=$(ninja -C "$build" cli/gryphgen 2>&1); then
    echo "memory: building gryphgen failed:"; echo "$log"; exit 1
fi
gg=$build/cli/gryphgen
[ -x "$gg" ] || { echo "memory: $gg was not built"; exit 1; }
py=${GRYPHGEN_PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

declare -A rss hwm secs
for n in $sizes; do
    awk -v n="$n" 'BEGIN {
        for (i = 1; i <= n; i++)
            printf "{\"task_id\":\"mem/%d\",\"language\":\"python\",\"prompt\":\"Return 1.\",\"entry_point\":\"f\",\"test\":\"assert f() == 1\\n\",\"candidates\":[\"def f(): return 1\\n\"]}\n", i
    }' >"$tmp/tasks$n.jsonl"

    start=$(date +%s.%N)
    /usr/bin/time -v -o "$tmp/time$n" "$gg" eval --generator replay --jobs "$jobs" --python "$py" \
        --db "$tmp/db$n.sqlite" --quiet "$tmp/tasks$n.jsonl" >"$tmp/out$n" 2>&1 &
    timepid=$!
    # Sample gryphgen's own high-water mark while it runs (VmHWM only grows).
    peak=0
    while kill -0 "$timepid" 2>/dev/null; do
        for c in $(cat /proc/"$timepid"/task/*/children 2>/dev/null); do
            v=$(awk '/^VmHWM:/ { print $2 }' /proc/"$c"/status 2>/dev/null || true)
            [ -n "$v" ] && [ "$v" -gt "$peak" ] && peak=$v
        done
        sleep 0.05
    done
    rc=0
    wait "$timepid" || rc=$?
    end=$(date +%s.%N)
    if [ "$rc" -ne 0 ]; then
        echo "memory: gryphgen eval of $n tasks failed ($rc):"; cat "$tmp/out$n" "$tmp/time$n"; exit 1
    fi
    rss[$n]=$(awk -F: '/Maximum resident set size/ { gsub(/ /, "", $2); print $2 }' "$tmp/time$n")
    hwm[$n]=$peak
    secs[$n]=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    echo "$n tasks: peak RSS ${rss[$n]} kB (time -v), gryphgen alone ${hwm[$n]} kB (VmHWM), ${secs[$n]} s"
    sed 's/^/    /' "$tmp/out$n"
done

set -- $sizes
if [ "$#" -ge 2 ]; then
    small=$1
    large=${!#}
    ratio=$(awk -v a="${rss[$large]}" -v b="${rss[$small]}" 'BEGIN { printf "%.2f", a / b }')
    hratio=$(awk -v a="${hwm[$large]}" -v b="${hwm[$small]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
    met=$(awk -v r="$ratio" 'BEGIN { print (r <= 1.2 ? "met" : "MISSED") }')
    echo
    echo "interpreter: $py"
    echo "peak RSS, $small tasks: ${rss[$small]} kB; $large tasks: ${rss[$large]} kB; ratio ${ratio}"
    echo "gryphgen alone (VmHWM): ${hwm[$small]} kB vs ${hwm[$large]} kB; ratio ${hratio}"
    echo "target: $large-task peak within 20% of the $small-task peak: $met"
fi
