"""test_db_lock_limit.py - the writer's limit on waiting for another process's lock
(GRYPHGEN_DB_LOCK_WAIT_S, an internal setting; 2 minutes by default, docs/configuration.md).
Another process takes the database of a running gryphgen eval with BEGIN EXCLUSIVE once some
attempts are stored:
- held past the limit (here 1 s): the run stops with exit 1 and a message naming the database,
  the lock and the limit; nothing it acknowledged is lost (every result in the results file
  is in the database, ended, with all its attempt rows); with the lock gone, running the set
  again on the same database finishes the rest;
- held shorter than the limit (here 60 s; let go once the writer says it will write again):
  waited out, the run finishes with exit 0.
(test_db_lock.py covers the default limit the same way as the second case.)"""

import os
import shutil
import sqlite3
import subprocess

from clitest import (GRYPHGEN, GUARD_S, Streams, check, env, finish, lock_after_attempts,
                     read_jsonl, tmpdir, wait_until, write_repair_set)

N_TASKS = 60
LOCK_AT = 20
RETRYING = "the batch is rolled back and written again"

work = tmpdir()
path = os.path.join(work, "set.jsonl")
write_repair_set(path, N_TASKS)


def locked_run(name, limit_s, release):
    """Runs eval with the limit, takes the lock after LOCK_AT attempts and calls
    release(streams, proc) (which says when to let go); returns (exit, out, err, db, res)."""
    db = os.path.join(work, name + ".db")
    res = os.path.join(work, name + ".results")
    proc = subprocess.Popen([GRYPHGEN, "eval", "--jobs", "2", "--quiet", "--log-level", "warn",
                             "--db", db, "--results", res, path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env(GRYPHGEN_DB_LOCK_WAIT_S=str(limit_s)))
    streams = Streams(proc)
    locker = lock_after_attempts(db, proc, LOCK_AT)
    check(locker, "%s: the lock was taken while the run went on" % name)
    if locker:
        release(streams, proc)
        locker.execute("ROLLBACK")
        locker.close()
    out, err = streams.wait()
    return proc.returncode, out, err, db, res


def until_exit(streams, proc):
    wait_until(lambda: proc.poll() is not None)


def until_retrying(streams, proc):
    met = wait_until(lambda: RETRYING in streams.err or proc.poll() is not None)
    check(met and RETRYING in streams.err, "short: the writer meets the lock and waits",
          "exit %s: %s" % (proc.poll(), streams.err[-2000:]))


def stored(db):
    """{task_id: (status, attempts, attempt rows)} read from the database."""
    conn = sqlite3.connect(db)
    try:
        return {r[0]: r[1:] for r in conn.execute(
            "SELECT t.task_id, t.status, t.attempts, count(a.n) FROM tasks t"
            " LEFT JOIN attempts a ON a.task_seq = t.seq GROUP BY t.seq")}
    finally:
        conn.close()


# Past the limit: the writer gives up, the run stops saying why.
code, out, err, db, res = locked_run("long", 1, until_exit)
check(code == 1, "long: a lock held past the limit stops the run: exit 1",
      "exit %s: %s" % (code, err[-2000:]))
check(db in err and "locked" in err and "the limit is 1 s" in err,
      "long: the message names the database, the lock and the limit", err[-2000:])
check(err.count("giving up") <= 2, "long: the give-up is said once", err[-2000:])
rows = read_jsonl(res) if os.path.exists(res) else []
db_rows = stored(db)
lost = [(r.get("task_id"), r.get("status"), r.get("attempts"), db_rows.get(r.get("task_id")))
        for r in rows
        if db_rows.get(r.get("task_id")) != (r.get("status"), r.get("attempts"),
                                              r.get("attempts"))]
check(rows and not lost, "long: every acknowledged result is in the database, ended, with "
      "its attempt rows (%d results)" % len(rows), lost[:5])
again = subprocess.run([GRYPHGEN, "eval", "--jobs", "2", "--quiet", "--db", db, path],
                       capture_output=True, text=True, env=env(), timeout=GUARD_S)
check(again.returncode == 0, "long: the set run again on the same database finishes",
      again.stderr[-2000:])
done = stored(db)
check(len(done) == N_TASKS and all(v == ("passed", 2, 2) for v in done.values()),
      "long: then every task passed with its 2 attempt rows",
      [kv for kv in done.items() if kv[1] != ("passed", 2, 2)][:5])

# Shorter than the limit: waited out.
code, out, err, db, res = locked_run("short", 60, until_retrying)
check(code == 0, "short: a lock let go within the limit is waited out: exit 0",
      "exit %s: %s" % (code, err[-2000:]))
done = stored(db)
check(len(done) == N_TASKS and all(v == ("passed", 2, 2) for v in done.values()),
      "short: every task passed with its 2 attempt rows",
      [kv for kv in done.items() if kv[1] != ("passed", 2, 2)][:5])

# A bad value is said and the default used (the run is not locked: it just finishes).
p = subprocess.run([GRYPHGEN, "eval", "--jobs", "2", "--quiet", path], capture_output=True,
                   text=True, env=env(GRYPHGEN_DB_LOCK_WAIT_S="soon"), timeout=GUARD_S)
check(p.returncode == 0 and "ignoring GRYPHGEN_DB_LOCK_WAIT_S='soon'" in p.stderr,
      "a bad GRYPHGEN_DB_LOCK_WAIT_S is named in a warning", p.stderr[-2000:])

shutil.rmtree(work, ignore_errors=True)
finish()
