#!/bin/bash
# dispatch.sh - dispatch throughput of the grid: no-op jobs through `gryphgen serve` and two
# `gryphgen worker --executor noop` over tcp on loopback, every state change durable
# (SQLite WAL, group commit), compared in the same run with
#   - raw libzmq ROUTER/DEALER round trips with the same per-task message sizes, pipelined
#     (bench/zmq_raw.c): the limit. "The same message sizes" is per task: the grid batches
#     several jobs into one `jobs` message and several results into one `results` message,
#     while zmq_raw sends one request of (stored task spec + 80 bytes of job envelope) and one
#     reply of (stored attempt record + 60 bytes of result envelope) per task, each its own
#     ZeroMQ message, 100 in flight per peer; both sides read the sizes from the grid's own
#     database of this run, so the raw side never moves fewer bytes per task than the grid;
#   - Dask distributed (LocalCluster, 2 workers) and Celery with Redis (2 worker processes)
#     doing the same no-op work, each skipped with a note when not installed
#     (apt-get install python3-distributed python3-celery python3-redis redis-server).
# Prints tasks/s for each and the ratios. Target: the grid at least 15% of raw ZeroMQ.
# The grid runs unencrypted on loopback, so every command gets --insecure.
# With MEMORY=1 it also measures the orchestrator's RSS with 1,000,000 tasks queued and no
# worker (target: under 256 MB), and a worker's RSS after 10,000 and 100,000 no-op jobs
# (target: no growth).
# The dispatch time runs from the first task's start (its started_at: the first worker has
# connected, as Dask's and Celery's workers are up before their clocks start) to the last
# task's finished_at in the grid's database (so neither the workers' start nor the client's
# `status` polling, every 0.5 s, adds to it or rounds it); the time the workers took to start
# is printed too. The CPU time serve and each worker used meanwhile is printed per task
# (us/task): on this 2-core machine that is the figure least disturbed by other load.
# The grid and raw libzmq are measured in ROUNDS alternating rounds (default 3), each pair
# back to back, and the medians are compared: on a shared 2-core machine one run of either
# varies by a fifth or more.
# Each worker holds QUEUE jobs ahead (default 1024): a no-op job takes a worker about 1.5 us,
# so 256 jobs are less work than one round of the scheduler (results in, group commit, jobs
# out); the queue has to cover that round trip, as the raw side's 100 in flight cover its
# own. N is large enough (default 200000) that the start and the end of a run weigh little.
# With OBSERVE=1 (the default) each round also runs the grid with `serve --http` twice: idle,
# and observed the way an operator's tools do (/metrics scraped every second and the
# dashboard's event stream read throughout, by bench/observe.py); the cost of observing is
# the observed median against the idle one (target: at most 2%, issue 19), and the serve
# process's CPU per task in both (the figure a busy shared machine disturbs least).
# Environment: BUILD (build dir, default build), N (tasks, default 200000), QUEUE (jobs a
# worker holds ahead, default 1024), ROUNDS (default 3), MEMORY (0/1), PEERS_N (Dask/Celery
# tasks, default 5000), PEERS (0: skip Dask and Celery), OBSERVE (0: skip the HTTP variants),
# HA (1: also the grid with a standby backup attached against alone, alternating rounds).
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$repo/build}
n=${N:-200000}
queue=${QUEUE:-1024}
rounds=${ROUNDS:-3}
peer_n=${PEERS_N:-5000}
py=/usr/bin/python3
[ -x $py ] || py=$(command -v python3)

[ -f "$build/build.ninja" ] || meson setup "$build" "$repo" >/dev/null || exit 1
if ! log=$(ninja -C "$build" cli/gryphgen bench/zmq_raw 2>&1); then
    echo "dispatch: building failed:"; echo "$log"; exit 1
fi
gg=$build/cli/gryphgen
. "$repo/bench/lib.sh" # $tmp, $pids (stopped at exit), port

now() { date +%s.%N; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# The status reply is {"queued":..,"running":..,"passed":N,...}: read without a JSON parser.
passed() {
    local p
    p=$($gg status --insecure --connect "$1" 2>/dev/null | grep -o '"passed": *[0-9]*' | head -1)
    echo "${p##*[!0-9]}" | grep -x '[0-9][0-9]*' || echo 0
}
wait_passed() { # endpoint count
    while [ "$(passed "$1")" -lt "$2" ]; do sleep 0.5; done
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; } # utime+stime
hz=$(getconf CLK_TCK)
tasks() { # count file
    $py - "$1" "$2" <<'PY'
import json, sys
with open(sys.argv[2], "w") as f:
    for i in range(int(sys.argv[1])):
        f.write(json.dumps({"task_id": "n%d" % i, "language": "python", "prompt": "noop"}) + "\n")
PY
}

echo "dispatch: $n no-op tasks, 2 workers (queue $queue each), tcp on loopback"
tasks "$n" "$tmp/tasks.jsonl"

# --- the grid: submit everything first (durable), then time the dispatch alone. Each round
# starts a new orchestrator and database; the round's raw libzmq run follows it at once, so
# both sides of a ratio see the same load on the machine.
grid_round() { # name [http|observed|logged|ha]
    local ep="tcp://127.0.0.1:$(port)" db="$tmp/grid$1.db" serve t0 t1 t2 c0 c1 cw1 cw2 i
    local mode=${2:-} http_args=() hport obs="" backup="" bep
    if [ "$mode" = http ] || [ "$mode" = observed ]; then
        hport=$(port); http_args=(--http "127.0.0.1:$hport")
    fi
    # The pair is started with --log-level info (the bench reads "the backup is attached"
    # from its log), so the lone server it is compared with logs at the same level.
    [ "$mode" = logged ] && http_args=(--log-level info)
    if [ "$mode" = ha ]; then
        # A standby pair (docs/ha.md): replies wait for the backup's ack of their batch.
        bep="tcp://127.0.0.1:$(port)"
        http_args=(--ha-role primary --ha-peer "$bep" --log-level info)
        $gg serve --insecure --bind "$bep" --db "$tmp/backup$1.db" --ha-role backup \
            --ha-peer "$ep" 2>"$tmp/backup$1.log" & backup=$!; pids+=($backup)
    fi
    $gg serve --insecure --bind "$ep" --db "$db" "${http_args[@]}" 2>"$tmp/serve$1.log" &
    serve=$!; pids+=($serve)
    sleep 0.3
    if [ -n "$backup" ]; then
        while ! grep -q "the backup is attached" "$tmp/serve$1.log"; do sleep 0.05; done
    fi
    t0=$(now)
    $gg submit --insecure --connect "$ep" "$tmp/tasks.jsonl" >/dev/null || {
        echo "dispatch: submit failed"; exit 1; }
    t1=$(now)
    submit_rate=$($py -c "print(round($n/($t1-$t0)))")
    if [ "$mode" = observed ]; then
        rm -f "$tmp/observing$1"
        $py "$repo/bench/observe.py" "http://127.0.0.1:$hport" "$tmp/observing$1" \
            >"$tmp/observe$1.log" 2>&1 & obs=$!; pids+=($obs)
        while [ ! -f "$tmp/observing$1" ]; do sleep 0.05; done # its stream is open
    fi
    c0=$(cpu_ticks $serve); cb0=0
    [ -n "$backup" ] && cb0=$(cpu_ticks $backup)
    local wpids=()
    for i in 1 2; do
        $gg worker --insecure --connect "$ep" --executor noop --slots 1 --queue "$queue" \
            --name "w$i" 2>"$tmp/w$1-$i.log" & pids+=($!); wpids+=($!)
    done
    t2=$(now)
    wait_passed "$ep" "$n"
    c1=$(cpu_ticks $serve); cw1=$(cpu_ticks ${wpids[0]}); cw2=$(cpu_ticks ${wpids[1]})
    backup_us=0
    [ -n "$backup" ] && backup_us=$(us "$(cpu_ticks $backup)-$cb0")
    read -r t_first t3 < <($py - "$db" <<'PY'
import sqlite3, sys
print(*sqlite3.connect(sys.argv[1]).execute(
    "SELECT min(started_at), max(finished_at) FROM tasks").fetchone())
PY
)
    grid=$($py -c "print(round($n/($t3-$t_first)))")
    start_ms=$($py -c "print(round(1e3*($t_first-$t2)))")
    serve_us=$(us "$c1-$c0")
    cpu="serve $serve_us us, workers $(us "$cw1") + $(us "$cw2") us"
    # the raw side's sizes: a job of one task and its result, as stored in this round
    read -r req rep < <($py - "$db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
spec = c.execute("SELECT length(spec) FROM task_specs LIMIT 1").fetchone()[0]
rec = c.execute("SELECT length(record) FROM attempts LIMIT 1").fetchone()[0]
print(spec + 80, rec + 60)
PY
)
    if [ -n "$obs" ]; then
        kill -INT "$obs" 2>/dev/null; wait "$obs" 2>/dev/null
        observed_note=$(tail -1 "$tmp/observe$1.log")
    fi
    kill "${wpids[@]}" "$serve" $backup 2>/dev/null
    wait "${wpids[@]}" "$serve" $backup 2>/dev/null
}
us() { $py -c "print(round(1e6*($1)/$hz/$n, 1))"; }
fmedian() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
median() { printf '%s\n' "$@" | sort -n | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : int((v[NR/2]+v[NR/2+1])/2)}'; }
ratio() { $py -c "a,b='$1','$2'; print('%.1f%%' % (100*float(a)/float(b)) if a.replace('.','').isdigit() and b.replace('.','').isdigit() and float(b)>0 else 'n/a')"; }
grids=(); raws=()
for r in $(seq "$([ "${GRID:-1}" = 0 ] && echo 0 || echo "$rounds")"); do
    grid_round "$r"
    raw=$("$build/bench/zmq_raw" 2 100 "$req" "$rep" 2 | awk '{print $1}')
    echo "round $r: grid $grid tasks/s (first claim ${start_ms} ms after the workers started;" \
        "submit $submit_rate tasks/s; CPU per task: $cpu), raw libzmq $raw round trips/s:" \
        "$(ratio "$grid" "$raw")"
    grids+=("$grid"); raws+=("$raw")
done
grid=$(median "${grids[@]}")
raw=$(median "${raws[@]}")
[ "${GRID:-1}" = 0 ] || echo "grid dispatch (durable, median of $rounds): $grid tasks/s"
[ "${GRID:-1}" = 0 ] || echo "raw libzmq (2 peers x 100 in flight, $req/$rep bytes, median of $rounds): $raw round trips/s"

# --- the cost of watching: serve --http idle against serve --http observed, alternating.
if [ "${OBSERVE:-1}" != 0 ]; then
    idles=(); watched=(); idle_cpu=(); seen_cpu=()
    for r in $(seq "$rounds"); do
        grid_round "h$r" http; idles+=("$grid"); idle_cpu+=("$serve_us")
        grid_round "o$r" observed; watched+=("$grid"); seen_cpu+=("$serve_us")
        echo "round $r: serve --http idle ${idles[-1]} tasks/s (serve ${idle_cpu[-1]} us CPU" \
            "per task), observed ${watched[-1]} tasks/s (serve ${seen_cpu[-1]} us;" \
            "$observed_note)"
    done
    idle=$(median "${idles[@]}"); seen=$(median "${watched[@]}")
    echo "serve --http idle (median of $rounds): $idle tasks/s"
    echo "serve --http observed, /metrics every 1 s + event stream (median of $rounds): $seen tasks/s"
    echo "cost of observing: $($py -c "print('%.1f%%' % (100*(1-$seen/$idle)))") of throughput (target: at most 2%)"
    # The serve process's CPU per task (its scheduler, writer, HTTP and relay threads): on a
    # shared machine less disturbed by other load than the rate.
    ic=$(fmedian "${idle_cpu[@]}"); sc=$(fmedian "${seen_cpu[@]}")
    echo "serve CPU per task (medians of $rounds): idle $ic us, observed $sc us:" \
        "observing costs $($py -c "print('%.1f%%' % (100*($sc/$ic-1)))") more CPU"
fi
grid=$(median "${grids[@]}")

# --- the cost of a standby: the same grid with a backup attached (HA=1), alternating.
if [ "${HA:-0}" != 0 ]; then
    alones=(); pairs=()
    for r in $(seq "$rounds"); do
        grid_round "a$r" logged; alones+=("$grid"); alone_us=$serve_us
        grid_round "p$r" ha; pairs+=("$grid")
        echo "round $r: alone ${alones[-1]} tasks/s (serve $alone_us us CPU per task), with a" \
            "backup attached ${pairs[-1]} tasks/s (primary $serve_us us, backup $backup_us us)"
    done
    alone=$(median "${alones[@]}"); paired=$(median "${pairs[@]}")
    echo "python: $py ($($py --version 2>&1))"
    echo "grid alone (median of $rounds): $alone tasks/s"
    echo "grid with a backup attached (median of $rounds): $paired tasks/s"
    echo "cost of replication: $($py -c "print('%.1f%%' % (100*(1-$paired/$alone)))") of" \
        "throughput (target: at most 25%)"
    grid=$(median "${grids[@]}")
fi

# --- Dask
dask="skipped"
if [ "${PEERS:-1}" = 0 ]; then
    echo "dask: skipped (PEERS=0)"
elif $py -c 'import distributed' 2>/dev/null; then
    # From a file: Dask's worker processes re-import __main__, which stdin cannot give.
    cat > "$tmp/dask_noop.py" <<'PY'
import sys, time
from distributed import Client, LocalCluster
def noop(x):
    return None
if __name__ == "__main__":
    n = int(sys.argv[1])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cl, Client(cl) as c:
        c.gather(c.map(noop, range(100), pure=False))
        t = time.time()
        c.gather(c.map(noop, range(n), pure=False))
        print(round(n / (time.time() - t)))
PY
    dask=$(setsid $py "$tmp/dask_noop.py" "$peer_n" 2>"$tmp/dask.log" </dev/null | tail -1)
    [ -n "$dask" ] || dask="failed"
else
    echo "dask: skipped (apt-get install python3-distributed)"
fi
echo "dask distributed (2 workers):     $dask tasks/s"

# --- Celery + Redis
celery="skipped"
if [ "${PEERS:-1}" = 0 ]; then
    echo "celery: skipped (PEERS=0)"
elif $py -c 'import celery, redis' 2>/dev/null && command -v redis-server >/dev/null; then
    rport=$(port)
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no \
        >"$tmp/redis.log" 2>&1 & pids+=($!)
    mkdir -p "$tmp/cel"
    cat > "$tmp/cel/noopapp.py" <<PY
from celery import Celery
app = Celery("noopapp", broker="redis://127.0.0.1:$rport/0", backend="redis://127.0.0.1:$rport/1")
@app.task
def noop(x):
    return None
PY
    (cd "$tmp/cel" && exec setsid $py -m celery -A noopapp worker -c 2 -P prefork -l warning \
        >"$tmp/celery.log" 2>&1 </dev/null) & pids+=($!)
    sleep 3
    cat > "$tmp/cel/run_noop.py" <<'PY'
import sys, time
from noopapp import noop
n = int(sys.argv[1])
noop.delay(0).get(timeout=30)
t = time.time()
rs = [noop.delay(i) for i in range(n)]
for r in rs:
    r.get(timeout=120)
print(round(n / (time.time() - t)))
PY
    celery=$(cd "$tmp/cel" && $py run_noop.py "$peer_n" 2>"$tmp/celery_client.log" </dev/null | tail -1)
    [ -n "$celery" ] || celery="failed"
else
    echo "celery: skipped (apt-get install python3-celery python3-redis redis-server)"
fi
echo "celery + redis (2 processes):     $celery tasks/s"

times() { $py -c "a,b='$1','$2'; print('%.1fx' % (float(a)/float(b)) if a.replace('.','').isdigit() and b.replace('.','').isdigit() and float(b)>0 else 'n/a')"; }
echo "grid / raw libzmq:   $(ratio "$grid" "$raw") (medians; target: at least 15%)"
echo "grid / dask:         $(times "$grid" "$dask")"
echo "grid / celery:       $(times "$grid" "$celery")"

if [ "${MEMORY:-0}" = 1 ]; then
    echo "memory: 1,000,000 tasks queued with no worker connected"
    tasks 1000000 "$tmp/million.jsonl"
    ep2="tcp://127.0.0.1:$(port)"
    $gg serve --insecure --bind "$ep2" --db "$tmp/million.db" 2>"$tmp/serve2.log" & s2=$!; pids+=($s2)
    sleep 0.3
    $gg submit --insecure --connect "$ep2" "$tmp/million.jsonl" >/dev/null
    echo "orchestrator RSS: $(( $(rss_kb $s2) / 1024 )) MB, peak $(( $(hwm_kb $s2) / 1024 )) MB (target: under 256 MB)"
    $gg worker --insecure --connect "$ep2" --executor noop --slots 1 --queue "$queue" 2>/dev/null & w=$!; pids+=($w)
    wait_passed "$ep2" 10000
    r1=$(rss_kb $w)
    wait_passed "$ep2" 100000
    r2=$(rss_kb $w)
    echo "worker RSS after 10,000 jobs: $((r1/1024)) MB; after 100,000: $((r2/1024)) MB (target: no growth)"
fi
