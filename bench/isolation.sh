#!/bin/bash
# isolation.sh - what isolation costs. (1) Per-job overhead of `PYTHON -c pass`: plain
# fork/exec, the process executor at each isolation level (the namespace sandbox started
# directly and forked from a zygote), bubblewrap (`bwrap --unshare-all`, when installed) and,
# when bench/container_overhead.sh exists, the container executor's rows; medians and ratios
# to plain; then where a sandboxed job's time goes (each stage's median, from the executor's
# "stage_times": the zygote's handing on, cgroup, sandbox, the program, collecting the result,
# and what the zygote makes ahead of a job) and what the kernel charges for the namespaces
# alone (a bare clone into user+PID, network, mount+IPC+UTS namespaces). Target: a zygote job
# costs at most 5 ms beyond the program itself (each job's wall time minus its "program"
# stage, the median of those; the whole is printed beside it). (2) HumanEval through
# `gryphgen eval --isolation namespaces` against plain, unisolated subprocesses
# (bench/humaneval.sh). Target: ratio at most 0.5.
# Environment: BUILD (build dir, default build), PYTHON (interpreter, default
# /usr/bin/python3: it must be reachable by the sandbox's uid 65534, which a pyenv install
# in /root is not), RUNS (per-job runs, default 50), HE_RUNS (HumanEval runs, default 3;
# 0 skips HumanEval). The machine should be idle: the figures are timing-sensitive.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$repo/build}
py=${PYTHON:-/usr/bin/python3}
runs=${RUNS:-50}
[ -x "$py" ] || { echo "isolation: interpreter '$py' is not executable"; exit 1; }
[ -f "$build/build.ninja" ] || meson setup "$build" "$repo" >/dev/null || exit 1
if ! log=$(ninja -C "$build" cli/gryphgen 2>&1); then
    echo "isolation: building failed:"; echo "$log"; exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -std=c11 -D_GNU_SOURCE -O2 -I"$repo/include" -I"$build/include" "$repo/bench/isolation_overhead.c" \
    -o "$tmp/overhead" -L"$build/lib" -lgryphgen -Wl,-rpath,"$build/lib" -lm

echo "interpreter: $py ($("$py" -V 2>&1))"
echo "per-job overhead of '$(basename "$py") -c pass', median of $runs:"
bwrap=$(command -v bwrap || true)
[ -n "$bwrap" ] || echo "  (bubblewrap not installed: apt-get install bubblewrap)"
"$tmp/overhead" "$py" "$runs" $bwrap | sed 's/^/  /'
if [ -x "$repo/bench/container_overhead.sh" ] || [ -f "$repo/bench/container_overhead.sh" ]; then
    echo "container rows (bench/container_overhead.sh):"
    bash "$repo/bench/container_overhead.sh" 2>&1 | sed 's/^/  /' || echo "  (failed)"
fi

if [ "${HE_RUNS:-3}" = 0 ]; then
    exit 0 # HE_RUNS=0: the per-job rows only
fi
echo
echo "HumanEval with --isolation namespaces (bench/humaneval.sh):"
out=$(BUILD="$build" RUNS="${HE_RUNS:-3}" ISOLATION=namespaces GRYPHGEN_PYTHON="$py" \
      bash "$repo/bench/humaneval.sh" 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -E "^(run |interpreter|plain passed|jobs ran at|pipeline|plain |ratio|cpu)" |
    sed 's/^/  /'
echo "$out" | grep -E "passed at first attempt" | sed 's/^ */  gryphgen: /'
ratio=$(echo "$out" | sed -n 's/^ratio pipeline\/plain: *\([0-9.]*\)x.*/\1/p')
met=$(awk -v r="$ratio" 'BEGIN { print (r != "" && r <= 0.5 ? "met" : "MISSED") }')
echo "target: isolated pipeline at most 0.5x of plain unisolated subprocesses: $met"
