"""test_db_lock.py - another process takes the database of a running gryphgen eval with BEGIN
EXCLUSIVE once some attempts are stored, and holds it until the run's writer has met the lock
and says it will write its batch again (its busy timeout spent); then lets go: the run
finishes by itself, the batch is written whole, nothing it recorded is lost (every task ended,
each with as many attempt rows as its count says, a passing task passed at its last attempt),
and the summary agrees with the database and with the results file."""

import os
import shutil
import sqlite3
import subprocess

from clitest import (GRYPHGEN, Streams, check, env, finish, lock_after_attempts, read_jsonl,
                     summary, tmpdir, wait_until, write_repair_set)

N_TASKS = 60
LOCK_AT = 20          # attempt rows stored when the lock is taken
# What the writer logs (writer.c) when a try of a batch failed and it will try again: for a
# lock, only once its connection's busy timeout has passed.
RETRYING = "the batch is rolled back and written again"
WRITTEN = "written whole after"

work = tmpdir()
path = os.path.join(work, "set.jsonl")
write_repair_set(path, N_TASKS)
db = os.path.join(work, "run.db")
res = os.path.join(work, "results.jsonl")

# --log-level warn (the default, said here because the test reads the writer's log)
proc = subprocess.Popen([GRYPHGEN, "eval", "--jobs", "2", "--quiet", "--log-level", "warn",
                         "--db", db, "--results", res, path],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
streams = Streams(proc)


locker = lock_after_attempts(db, proc, LOCK_AT)
check(locker, "the lock was taken while the run went on (after %d attempts)" % LOCK_AT)
if locker:
    met = wait_until(lambda: RETRYING in streams.err or proc.poll() is not None)
    check(met and RETRYING in streams.err,
          "the writer meets the lock and says it writes the batch again",
          "exit %s: %s" % (proc.poll(), streams.err[-2000:]))
    locker.execute("ROLLBACK")
    locker.close()

out, err = streams.wait()
check(proc.returncode == 0, "the run finishes by itself, exit 0",
      "exit %s: %s" % (proc.returncode, err[-2000:]))
check("locked" in err, "the lock is logged", err[-2000:])
check(err.count("locked") <= 6, "the lock is not logged over and over", err[-2000:])
check(WRITTEN in err, "once the lock is gone the batch is written whole", err[-2000:])

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
