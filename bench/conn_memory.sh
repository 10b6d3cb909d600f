#!/bin/bash
# conn_memory.sh - does `gryphgen serve` give back what a burst of connections took? Starts
# serve on loopback with a fresh database, opens N connections to it (bench/conn_peers.py:
# raw ZMTP peers in turn a client saying hello, a worker saying hello, a greeting and
# nothing more, a bare TCP connection, and garbage), closes them all, waits until the hub
# knows no client or node any more (gryphgen status), and prints serve's resident memory
# (VmRSS) before, at the peak and after, and how much of the growth stayed.
# Target: after within 25% of the growth above before (`after - before <= 0.25 *
# (peak - before)`), and no client or node left known.
# Environment: BUILD (build dir, default build), N (default 3000), KINDS (the peers' kinds,
# default all; KINDS=silent,greeting,garbage: a burst that never says hello, which only the
# hub's transport sees end, bench/conn_peers.py).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$repo/build}
n=${N:-3000}
py=/usr/bin/python3

[ -f "$build/build.ninja" ] || meson setup "$build" "$repo" >/dev/null || exit 1
if ! log=$(ninja -C "$build" cli/gryphgen 2>&1); then
    echo "conn_memory: building gryphgen failed:"; echo "$log"; exit 1
fi
gg=$build/cli/gryphgen
[ -x "$gg" ] || { echo "conn_memory: $gg was not built"; exit 1; }
# serve holds one descriptor per connection, and so does the driver.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((n + 256)) ]; then
    echo "conn_memory: $n connections need more descriptors than 'ulimit -n' ($(ulimit -n))"
    exit 1
fi

. "$repo/bench/lib.sh" # $tmp, $pids (stopped at exit), port

port=$(port)
ep=tcp://127.0.0.1:$port
"$gg" serve --insecure --bind "$ep" --db "$tmp/grid.db" 2>"$tmp/serve.log" & serve=$!; pids+=("$serve")
# Ready when it answers status (no fixed sleep).
for _ in $(seq 600); do
    "$gg" status --insecure --connect "$ep" >/dev/null 2>&1 && break
    kill -0 "$serve" 2>/dev/null || { echo "conn_memory: serve exited:"; cat "$tmp/serve.log"; exit 1; }
    sleep 0.2
done

$py "$repo/bench/conn_peers.py" 127.0.0.1 "$port" "$n" "$serve" | tee "$tmp/out"
awk -v n="$n" -v kinds="${KINDS:-all kinds}" '
    /^rss before:/ { b = $3 } /^rss peak:/ { p = $3 } /^rss after:/ { a = $3 }
    /^known after close:/ { c = $5; sub(/,/, "", c); k = $7 }
    END {
        kept = p > b ? 100 * (a - b) / (p - b) : 0
        printf "conn_memory: %d connections (%s): before %.1f MB, peak %.1f MB, after %.1f MB; %.0f%% of the growth kept\n",
               n, kinds, b / 1024, p / 1024, a / 1024, kept
        ok = kept <= 25 && k == 0 && c <= 0
        printf "conn_memory: target (at most 25%% kept, no peer left known): %s\n", ok ? "met" : "NOT met"
        exit ok ? 0 : 1
    }' "$tmp/out"
