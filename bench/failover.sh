#!/bin/bash
# failover.sh - how fast does a worker given two endpoints (`--connect A,B`) move to the
# second orchestrator when the first one goes? Two `gryphgen serve` processes sharing nothing
# and one `gryphgen worker --connect A,B`; once A lists the worker, A is either killed with
# -9 (its TCP connections close at once: the worker's socket monitor sees it) or frozen with
# SIGSTOP (the connection stays open: only the silence rule, 3 heartbeat intervals, finds
# it), and the time until B lists the worker is taken (bench/failover.py polls B's status
# through the Python binding). ROUNDS rounds of each, alternating; medians printed.
# Target: after kill -9, the worker is on B within 2 s (the takeover budget of issue 20).
# Environment: BUILD (build dir, default build), ROUNDS (default 5).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$repo/build}
[ -f "$build/build.ninja" ] || meson setup "$build" "$repo" >/dev/null || exit 1
if ! log=$(ninja -C "$build" 2>&1); then
    echo "failover: building failed:"; echo "$log"; exit 1
fi
export GRYPHGEN_LIBRARY=$build/lib/libgryphgen.so.1
export PYTHONPATH=$repo/bindings/python
exec /usr/bin/python3 "$repo/bench/failover.py" "$build/cli/gryphgen" "${ROUNDS:-5}"
