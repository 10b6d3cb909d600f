"""test_db_lock.py - another process holds the database of a running gryphgen eval with BEGIN
EXCLUSIVE for longer than the busy timeout (8 s against 5 s), taken once some attempts are
stored and released after: the run finishes by itself, nothing it recorded is lost (every
task ended, each with as many attempt rows as its count says, a passing task passed at its
last attempt), and the summary agrees with the database and with the results file."""

import json
import os
import shutil
import sqlite3
import subprocess
import threading
import time

from clitest import (GRYPHGEN, check, env, finish, no_sanitizer_report, read_jsonl, summary,
                     tmpdir)

N_TASKS = 60
LOCK_AT = 20          # attempt rows stored when the lock is taken
HOLD_S = 8.0          # past the store's 5 s busy timeout
GUARD_S = 300         # against hangs only

work = tmpdir()
path = os.path.join(work, "set.jsonl")
with open(path, "w") as f:
    for i in range(N_TASKS):
        # two attempts each: the first candidate fails, the second passes
        f.write(json.dumps({
            "task_id": "t%03d" % i, "language": "python", "prompt": "add one",
            "stub": "def f(a):\n", "entry_point": "f",
            "test": "def check(candidate):\n    assert candidate(%d) == %d\n" % (i, i + 1),
            "candidates": ["    return a\n", "    return a + 1\n"]}) + "\n")
db = os.path.join(work, "run.db")
res = os.path.join(work, "results.jsonl")

proc = subprocess.Popen([GRYPHGEN, "eval", "--jobs", "2", "--quiet", "--db", db, "--results",
                         res, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        env=env())
# Read its output as it comes, so a full pipe never stalls it.
streams = {}


def drain(name, stream):
    streams[name] = stream.read()


readers = [threading.Thread(target=drain, args=(n, s))
           for n, s in (("out", proc.stdout), ("err", proc.stderr))]
for t in readers:
    t.start()


def attempts_stored(conn):
    try:
        return conn.execute("SELECT count(*) FROM attempts").fetchone()[0]
    except sqlite3.Error:
        return -1  # not created yet


deadline = time.monotonic() + GUARD_S
while not os.path.exists(db) and proc.poll() is None and time.monotonic() < deadline:
    time.sleep(0.01)
locker = sqlite3.connect(db, timeout=60, isolation_level=None)
held = False
while proc.poll() is None and time.monotonic() < deadline:
    if attempts_stored(locker) >= LOCK_AT:
        locker.execute("BEGIN EXCLUSIVE")
        held = True
        break
    time.sleep(0.005)
check(held, "the lock was taken while the run went on (after %d attempts)" % LOCK_AT)
if held:
    time.sleep(HOLD_S)  # holding the lock is the point here, not waiting for something
    locker.execute("ROLLBACK")
locker.close()

try:
    proc.wait(timeout=max(1, deadline - time.monotonic()))
except subprocess.TimeoutExpired:
    proc.kill()
    proc.wait()
for t in readers:
    t.join()
out, err = streams.get("out", ""), streams.get("err", "")
no_sanitizer_report(err)
check(proc.returncode == 0, "the run finishes by itself, exit 0",
      "exit %s: %s" % (proc.returncode, err[-2000:]))
check("locked" in err, "the lock is logged", err[-2000:])
check(err.count("locked") <= 6, "the lock is not logged over and over", err[-2000:])

s = summary(out)
check(s.get("tasks") == N_TASKS and s.get("passed after repair") == N_TASKS,
      "every task passed after repair", out + err[-1000:])
check(s.get("attempts") == 2 * N_TASKS and s.get("attempts this run") == 2 * N_TASKS,
      "attempts: %d, this run the same" % (2 * N_TASKS), out)

rows = read_jsonl(res) if os.path.exists(res) else []
check(len(rows) == N_TASKS, "one result per task", len(rows))
bad = [(r.get("task_id"), r.get("status"), r.get("attempts"), r.get("passed_attempt"),
        len(r.get("history") or [])) for r in rows
       if r.get("status") != "passed" or r.get("attempts") != 2 or
       r.get("passed_attempt") != 2 or len(r.get("history") or []) != 2]
check(not bad, "each task: passed, 2 attempts, passed at attempt 2, 2 history entries", bad[:5])

conn = sqlite3.connect(db)
per_task = conn.execute(
    "SELECT t.task_id, t.status, t.attempts, count(a.n), coalesce(max(a.n), 0)"
    " FROM tasks t LEFT JOIN attempts a ON a.task_seq = t.seq GROUP BY t.seq").fetchall()
check(len(per_task) == N_TASKS, "every task is in the database", len(per_task))
lost = [r for r in per_task if r[1] != "passed" or r[2] != r[3] or r[3] != r[4] or r[3] != 2]
check(not lost, "the database: every task passed with its 2 attempt rows", lost[:5])
counts = dict(conn.execute("SELECT status, n FROM task_counts").fetchall())
check(counts.get("passed") == N_TASKS and counts.get("queued", 0) == 0 and
      counts.get("running", 0) == 0 and counts.get("#attempts") == 2 * N_TASKS,
      "the stored counts agree", counts)
conn.close()

shutil.rmtree(work, ignore_errors=True)
finish()
