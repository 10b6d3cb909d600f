"""test_kill.py - the grid survives its processes dying: `gryphgen serve` and three
`gryphgen worker` processes on loopback run a task set; one worker is killed with -9 mid-run
(its jobs are requeued and rerouted), then the orchestrator is killed with -9 and restarted
on the same database (the workers reconnect by themselves, unfinished tasks resume, and a
client that was waiting across the restart gets every result). Every task ends exactly once
(the store refuses a second end, and no serve log reports one) with no duplicate attempt."""

import json
import os
import shutil
import subprocess

from gridtest import (GUARD_S, busy, check, db_rows, env, finish, free_port, kill, nodes, query,
                      require, skip, start, stop_all, tmpdir, up, wait_until,
                      GRYPHGEN)

if not shutil.which("/usr/bin/python3"):
    skip("needs /usr/bin/python3 to run the tasks")

work = tmpdir()
db = os.path.join(work, "grid.db")
ep = "tcp://127.0.0.1:%d" % free_port()
N = 36

# Each task sleeps a little in its test, so that every worker holds jobs most of the run and
# a task whose job is requeued needs another half second at least; the kills themselves wait
# for what the hub and the database show.
tasks = os.path.join(work, "tasks.jsonl")
with open(tasks, "w") as f:
    for i in range(N):
        f.write(json.dumps({
            "task_id": "k%02d" % i, "language": "python", "prompt": "return %d" % i,
            "entry_point": "f",
            "test": "import time\ntime.sleep(0.5)\nassert f() == %d\n" % i,
            "candidates": ["def f():\n    return -1\n", "def f():\n    return %d\n" % i],
            "budget": {"max_attempts": 3}}) + "\n")

try:
    serve = start(["serve", "--insecure", "--bind", ep, "--db", db, "--log-level", "info"],
                  os.path.join(work, "serve.log"))
    workers = [start(["worker", "--insecure", "--connect", ep, "--slots", "2", "--name", "w%d" % i,
                            "--log-level", "info"],
                     os.path.join(work, "w%d.log" % i)) for i in range(3)]
    up("three workers join", lambda: nodes(ep) == 3, serve, *workers)

    # A client submits everything and waits for every result, across what follows.
    client = subprocess.Popen([GRYPHGEN, "submit", "--insecure", "--connect", ep, "--wait",
                               "--timeout-ms", str(int(GUARD_S * 1000)), tasks],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env())
    def attempts():
        rows = db_rows(db, "SELECT count(*) FROM attempts")
        return rows[0][0] if rows else 0
    # -9 a worker while the hub shows it holding a job, once attempts are being recorded
    # (a run that ended first fails here, at once).
    require(wait_until(lambda: attempts() >= 2 * N or
                       (attempts() >= 6 and busy(ep, "w0") >= 1)) and
            attempts() < 2 * N, "the run is under way with w0 holding a job", attempts())
    kill(workers[0])

    def events(kind):
        rows = db_rows(db, "SELECT count(*) FROM events WHERE kind = ?", (kind,))
        return rows[0][0] if rows else 0
    check(wait_until(lambda: events("node.lost") >= 1 and events("job.requeued") >= 1),
          "the hub notices the killed worker and requeues its jobs", attempts())
    check(wait_until(lambda: attempts() >= 30), "the run goes on without it", attempts())
    # -9 the orchestrator mid-run: a requeued job's task needs half a second more at least.
    kill(serve)
    unfinished = query(db, "SELECT count(*) FROM tasks WHERE status IN ('queued','running')")[0][0]
    check(unfinished > 0, "tasks were unfinished when the orchestrator died", unfinished)
    serve = start(["serve", "--insecure", "--bind", ep, "--db", db, "--log-level", "info"],
                  os.path.join(work, "serve2.log"))
    up("the two live workers reconnect", lambda: nodes(ep) == 2, serve, *workers[1:])

    try:
        out, err = client.communicate(timeout=GUARD_S)
    except subprocess.TimeoutExpired:
        client.kill()
        out, err = client.communicate()
    lines = [l for l in out.splitlines() if l.startswith("{")]
    results = [json.loads(l) for l in lines]
    check(client.returncode == 0 and len(results) == N,
          "the waiting client gets all %d results across the restart" % N,
          "rc %s, %d results; %s" % (client.returncode, len(results), err[-2000:]))
    check(all(r.get("status") == "passed" and r.get("attempts") == 2 for r in results),
          "every task passed at attempt 2", [(r.get("task_id"), r.get("status"),
                                              r.get("attempts")) for r in results][:8])

    rows = query(db, "SELECT status, count(*) FROM tasks GROUP BY status")
    check(rows == [("passed", N)], "every task ended passed in the database", rows)
    counts = dict(query(db, "SELECT status, n FROM task_counts"))
    check(counts.get("passed") == N and counts.get("queued") == 0 and
          counts.get("running") == 0 and counts.get("#attempts") == 2 * N,
          "the kept counts agree with the rows", counts)
    # The store refuses to end a task twice, and says so in the log.
    for name in ("serve.log", "serve2.log"):
        with open(os.path.join(work, name)) as f:
            slog = f.read()
        check("a task ends once" not in slog, "no task ended twice (%s)" % name, slog[-1500:])
    att = query(db, "SELECT count(*), count(DISTINCT task_seq || '/' || n), max(n)"
                    " FROM attempts")[0]
    check(att == (2 * N, 2 * N, 2), "two attempts per task, none recorded twice", att)
    lost = query(db, "SELECT count(*) FROM events WHERE kind = 'node.lost'")[0][0]
    check(lost >= 1, "the killed worker was noticed", lost)
    requeued = query(db, "SELECT count(*) FROM events WHERE kind = 'job.requeued'")[0][0]
    check(requeued >= 1, "its jobs were requeued", requeued)
    names = {r[0] for r in query(db, "SELECT DISTINCT json_extract(record, '$.node')"
                                     " FROM attempts")}
    check({"w1", "w2"} <= names, "the other workers ran attempts", names)
    with open(os.path.join(work, "w1.log")) as f:
        wlog = f.read()
    check("reconnecting" in wlog or "new hello" in wlog,
          "a worker noticed the restart and said hello again", wlog[-1500:])
finally:
    stop_all()
    shutil.rmtree(work, ignore_errors=True)
finish()
