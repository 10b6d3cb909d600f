#!/bin/bash
# rest_submit.sh - REST submission throughput (issue 19; target: at least 5,000 tasks/s):
# N tasks (default 100000) POSTed to `gryphgen serve --http` /v1/tasks as JSON lines in
# batches of BATCH (default 1000) over one kept-alive connection, against `gryphgen submit`
# over ZeroMQ of the same tasks to a fresh serve in the same run (the peer figure). No worker
# runs: this is the submission path alone (parse, validate, durable insert). Prints tasks/s
# for both and their ratio.
# Environment: BUILD (build dir, default build), N, BATCH.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$repo/build}
n=${N:-100000}
batch=${BATCH:-1000}
py=/usr/bin/python3
[ -x $py ] || py=$(command -v python3)

[ -f "$build/build.ninja" ] || meson setup "$build" "$repo" >/dev/null || exit 1
if ! log=$(ninja -C "$build" cli/gryphgen 2>&1); then
    echo "rest_submit: building failed:"; echo "$log"; exit 1
fi
gg=$build/cli/gryphgen
. "$repo/bench/lib.sh" # $tmp, $pids (stopped at exit), port

$py - "$n" "$tmp/tasks.jsonl" <<'PY'
import json, sys
with open(sys.argv[2], "w") as f:
    for i in range(int(sys.argv[1])):
        f.write(json.dumps({"task_id": "r%d" % i, "language": "python", "prompt": "noop"}) + "\n")
PY
echo "rest_submit: $n tasks, JSON lines in batches of $batch, no worker"

# --- REST
hport=$(port)
$gg serve --insecure --bind "tcp://127.0.0.1:$(port)" --db "$tmp/rest.db" \
    --http "127.0.0.1:$hport" 2>"$tmp/serve-rest.log" & pids+=($!)
rest=$($py - "$hport" "$tmp/tasks.jsonl" "$batch" <<'PY'
import http.client, sys, time
port, path, batch = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
lines = open(path).read().splitlines(keepends=True)
for _ in range(600):  # wait for the server (a guard, not a measure)
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.request("GET", "/healthz"); c.getresponse().read()
        break
    except OSError:
        time.sleep(0.05)
t0 = time.monotonic()
for i in range(0, len(lines), batch):
    c.request("POST", "/v1/tasks", "".join(lines[i:i + batch]))
    r = c.getresponse(); body = r.read()
    if r.status != 201:
        sys.exit("POST failed: %d %s" % (r.status, body[:300]))
print(round(len(lines) / (time.monotonic() - t0)))
PY
) || { echo "rest_submit: REST submission failed: $rest"; exit 1; }

# --- ZeroMQ (gryphgen submit), the same tasks to a fresh serve
ep="tcp://127.0.0.1:$(port)"
$gg serve --insecure --bind "$ep" --db "$tmp/zmq.db" 2>"$tmp/serve-zmq.log" & pids+=($!)
sleep 0.3
t0=$(date +%s.%N)
$gg submit --insecure --connect "$ep" "$tmp/tasks.jsonl" >/dev/null || { echo "submit failed"; exit 1; }
t1=$(date +%s.%N)
zmq=$($py -c "print(round($n/($t1-$t0)))")
echo "REST POST /v1/tasks (JSON lines, $batch a request): $rest tasks/s (target: at least 5000)"
echo "gryphgen submit over ZeroMQ (same tasks, same run): $zmq tasks/s"
echo "REST / ZeroMQ: $($py -c "print('%.0f%%' % (100*$rest/$zmq))")"
