#!/bin/bash
# ha_takeover.sh - takeover time of a standby pair (docs/ha.md): from the primary's last
# answer to the first job the backup dispatched, median of ROUNDS (default 5). Target: at
# most 2 s with the defaults (peer timeout 500 ms, workers' heartbeat 200 ms).
#
# Each round: `serve --ha-role primary` and `serve --ha-role backup` on loopback, three
# `worker --executor noop` given both endpoints. A first batch of tasks runs to its end;
# then the workers are frozen (SIGSTOP) and a second batch is submitted, so that the primary
# holds it (acknowledged, dispatched to the frozen workers) when it is killed with -9; the
# workers are let go at once and turn to the backup. The primary's last answer is at or
# before the kill (t_kill, taken just before it); the backup's first job is read from its
# database: the earliest finished_at of the second batch (a no-op job ends within a round
# trip of its dispatch, so this is an upper bound by that much).
#
# The same run measures, as the figure to compare with, a lone server killed the same way
# and restarted at once on its database by a supervisor that reacts instantly (the best a
# restart can do; systemd's RestartSec=1 adds a second).
#
# Environment: BUILD (build dir, default build), ROUNDS (default 5), N (tasks per batch,
# default 300), TIMEOUT_MS (the pair's --ha-timeout-ms; default: the server's).
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$repo/build}
rounds=${ROUNDS:-5}
n=${N:-300}
py=/usr/bin/python3
[ -x $py ] || py=$(command -v python3)
[ -f "$build/build.ninja" ] || meson setup "$build" "$repo" >/dev/null || exit 1
ninja -C "$build" cli/gryphgen >/dev/null || { echo "ha_takeover: build failed"; exit 1; }
gg=$build/cli/gryphgen
. "$repo/bench/lib.sh" # $tmp, $pids (stopped at exit), port
now() { date +%s.%N; }
timeout_args=()
[ -n "${TIMEOUT_MS:-}" ] && timeout_args=(--ha-timeout-ms "$TIMEOUT_MS")

tasks() { # first count file
    $py - "$1" "$2" "$3" <<'PY'
import json, sys
first, n = int(sys.argv[1]), int(sys.argv[2])
with open(sys.argv[3], "w") as f:
    for i in range(first, first + n):
        f.write(json.dumps({"task_id": "h%d" % i, "language": "python", "prompt": "noop"}) + "\n")
PY
}
tasks 0 "$n" "$tmp/a.jsonl"
tasks "$n" "$n" "$tmp/b.jsonl"
count() { # db sql
    $py - "$1" "$2" <<'PY' 2>/dev/null || echo 0
import sqlite3, sys
try:
    print(sqlite3.connect(sys.argv[1], timeout=30).execute(sys.argv[2]).fetchone()[0] or 0)
except sqlite3.Error:
    print(0)
PY
}
wait_count() { # db sql want
    local deadline=$((SECONDS + 120))
    while [ "$(count "$1" "$2")" -lt "$3" ]; do
        [ $SECONDS -lt $deadline ] || { echo "ha_takeover: timed out waiting for $2 >= $3 in $1"; exit 1; }
        sleep 0.05
    done
}
first_end_after() { # db t_kill: seconds from t_kill to the first end of the second batch
    $py - "$1" "$2" "$n" <<'PY'
import sqlite3, sys
t = sqlite3.connect(sys.argv[1], timeout=30).execute(
    "SELECT min(finished_at) FROM tasks WHERE CAST(substr(task_id, 2) AS INTEGER) >= ?",
    (int(sys.argv[3]),)).fetchone()[0]
print("%.3f" % (t - float(sys.argv[2])))
PY
}
passed_sql="SELECT count(*) FROM tasks WHERE status = 'passed'"

# Server starts for measure: called as "START TAG" they start what the workers and the
# submitter connect to, setting ep (the endpoints), db (where the ends are read), victim (the
# PID killed with -9) and left (the PIDs stopped after the round); called again as
# "START TAG after-kill" right after the kill, they do what follows it.
pair_start() { # tag [after-kill]: a standby pair; the backup takes over by itself
    [ -z "${2:-}" ] || return 0
    local pe be
    pe="tcp://127.0.0.1:$(port)" be="tcp://127.0.0.1:$(port)"
    $gg serve --insecure --bind "$pe" --db "$tmp/$1p.db" --ha-role primary --ha-peer "$be" \
        --log-level info "${timeout_args[@]}" 2>"$tmp/$1p.log" & victim=$!; pids+=($!)
    $gg serve --insecure --bind "$be" --db "$tmp/$1b.db" --ha-role backup --ha-peer "$pe" \
        --log-level info "${timeout_args[@]}" 2>"$tmp/$1b.log" & left=($!); pids+=($!)
    while ! grep -q "the backup is attached" "$tmp/$1p.log" 2>/dev/null; do sleep 0.05; done
    ep="$pe,$be" db="$tmp/$1b.db"
}

lone_start() { # tag [after-kill]: a lone server; after the kill, restarted at once on its db
    if [ -z "${2:-}" ]; then
        ep="tcp://127.0.0.1:$(port)" db="$tmp/$1.db"
        $gg serve --insecure --bind "$ep" --db "$db" 2>"$tmp/$1.log" & victim=$!; pids+=($!)
        left=()
    else
        $gg serve --insecure --bind "$ep" --db "$db" 2>>"$tmp/$1.log" & left=($!); pids+=($!)
    fi
}

measure() { # start tag: one round; sets elapsed, from the kill to the second batch's first end
    local ws=() i t_kill
    "$1" "$2"
    for i in 1 2 3; do
        $gg worker --insecure --connect "$ep" --executor noop --slots 2 --name "w$i" \
            2>"$tmp/$2-w$i.log" & ws+=($!); pids+=($!)
    done
    $gg submit --insecure --connect "$ep" "$tmp/a.jsonl" >/dev/null || exit 1
    wait_count "$db" "$passed_sql" "$n"
    kill -STOP "${ws[@]}"
    $gg submit --insecure --connect "$ep" "$tmp/b.jsonl" >/dev/null || exit 1
    t_kill=$(now)
    kill -9 "$victim"; wait "$victim" 2>/dev/null
    "$1" "$2" after-kill
    kill -CONT "${ws[@]}"
    wait_count "$db" "$passed_sql" $((2 * n))
    elapsed=$(first_end_after "$db" "$t_kill")
    kill "${ws[@]}" "${left[@]}" 2>/dev/null; wait "${ws[@]}" "${left[@]}" 2>/dev/null
}

fmedian() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
echo "ha_takeover: $rounds rounds, $n + $n no-op tasks, 3 workers, loopback (python: $py)"
takes=(); restarts=()
for r in $(seq "$rounds"); do
    measure pair_start "pair$r"; takes+=("$elapsed")
    measure lone_start "lone$r"; restarts+=("$elapsed")
    echo "round $r: takeover ${takes[-1]} s; a lone server restarted at once ${restarts[-1]} s"
done
tk=$(fmedian "${takes[@]}")
echo "takeover, the primary's last answer to the backup's first job (median of $rounds): $tk s (target: at most 2 s)"
echo "a lone server killed and restarted at once, to its first job (median of $rounds): $(fmedian "${restarts[@]}") s"
