#!/bin/bash
# retrieval.sh - the retrieval benchmark: indexes 100,000 synthetic chunks (fixed seed) with
# the fts5 backend, then compares query latency and rate of the blended ranking (BM25 +
# learned usefulness, through the whole search call) with a plain FTS5 bm25() query over
# the same table in the same run (its connection gets the backend's pragmas). Prints the
# settings that ran (query, SQLite, CPUs and load average), p50/p99 wall clock and thread CPU
# time, queries/s, and how often the weight-0 top 5 equals the plain one. Targets: p99 <= 2
# ms, >= 70% of the plain rate; exit status 3 when one is missed. On a shared machine wall
# p99 follows the load: compare it with the plain figures of the same run.
# Environment: BUILD (build directory, default build), CHUNKS (100000), QUERIES (2000),
# RANKS ("100 5000": the frequency ranks query words are drawn from).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${BUILD:-build}"
case "$build" in /*) ;; *) build="$root/$build" ;; esac
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$root" >/dev/null
fi
ninja -C "$build" bench/retrieval_bench >/dev/null
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
read -r lo hi <<<"${RANKS:-100 5000}"
"$build/bench/retrieval_bench" "$tmp" "${CHUNKS:-100000}" "${QUERIES:-2000}" "$lo" "$hi"
