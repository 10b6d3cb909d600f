"""test_db_full.py - the filesystem of a running gryphgen eval's database fills up (a small
tmpfs, filled by the test once some attempts are stored): eval stops with exit 1 and a message
that says the database's filesystem is full, without logging the same line over and over and
without hanging; what was committed stays; once space is back, running the set again on the
same database finishes the rest, and every task ends with all of its attempts stored.
Needs to mount a tmpfs (root): skipped (77) where that is not allowed."""

import os
import shutil
import sqlite3
import subprocess

from clitest import (GRYPHGEN, Streams, check, env, finish, gg, mount_tmpfs, read_jsonl, skip,
                     summary, tmpdir, umount, wait_until, write_repair_set)

N_TASKS = 120
FILL_AT = 20          # attempt rows stored when the filesystem is filled
GUARD_S = 240         # against hangs only

work = tmpdir()
mnt = os.path.join(work, "small")
os.mkdir(mnt)
if not mount_tmpfs(mnt, "size=32m,mode=0700"):
    shutil.rmtree(work, ignore_errors=True)
    skip("cannot mount a small tmpfs here (needs root)")


def run_test():
    path = os.path.join(work, "set.jsonl")
    write_repair_set(path, N_TASKS)
    db = os.path.join(mnt, "run.db")
    filler = os.path.join(mnt, "filler")

    proc = subprocess.Popen([GRYPHGEN, "eval", "--jobs", "2", "--quiet", "--db", db, path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    streams = Streams(proc)
    try:
        wait_until(lambda: os.path.exists(db) or proc.poll() is not None)
        conn = sqlite3.connect(db, timeout=60)
        seen = -1

        def ready():
            nonlocal seen
            if proc.poll() is not None:
                return True
            try:
                # every task submitted (the run, not a submission, meets the full disk)
                seen, tasks = conn.execute("SELECT (SELECT count(*) FROM attempts),"
                                           " (SELECT count(*) FROM tasks)").fetchone()
            except sqlite3.Error:
                seen, tasks = -1, 0
            return seen >= FILL_AT and tasks == N_TASKS

        wait_until(ready, timeout=GUARD_S, step=0.005)
        conn.close()
        check(seen >= FILL_AT and proc.poll() is None,
              "the filesystem is filled while the run goes on", seen)
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 65536)
        except OSError:
            pass  # full
        try:
            while True:
                os.write(fd, b"\0" * 512)
        except OSError:
            pass
        os.close(fd)
    finally:
        out, err = streams.wait(GUARD_S)
    check(proc.returncode == 1, "a full filesystem stops the run: exit 1",
          "exit %s; stderr: %s" % (proc.returncode, err[-2000:]))
    check("full" in err and db in err, "the message says the database's filesystem is full",
          err[-2000:])
    check(len(err.splitlines()) <= 20, "the error is not logged over and over (%d lines)" %
          len(err.splitlines()), err[-3000:])
    check("tasks:" not in out, "no summary for a run that stopped", out)

    # Space comes back: what was committed is there, and the set resumes.
    os.unlink(filler)
    conn = sqlite3.connect(db)
    kept = conn.execute("SELECT count(*) FROM attempts").fetchone()[0]
    check(conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok",
          "the database is intact")
    conn.close()
    check(kept >= FILL_AT, "the attempts committed before the disk filled are kept", kept)

    res = os.path.join(work, "results.jsonl")
    p = gg(["eval", "--jobs", "2", "--quiet", "--db", db, "--results", res, path],
           timeout=GUARD_S)
    s = summary(p.stdout)
    check(p.returncode == 0 and s.get("tasks") == N_TASKS and
          s.get("passed after repair") == N_TASKS,
          "run again with space, the set finishes", p.stdout + p.stderr[-2000:])
    check(s.get("attempts") == 2 * N_TASKS and
          s.get("attempts this run") == 2 * N_TASKS - kept,
          "only the attempts not stored are made again (%d kept)" % kept, p.stdout)
    rows = read_jsonl(res) if os.path.exists(res) else []
    bad = [(r.get("task_id"), r.get("status"), r.get("attempts"), r.get("passed_attempt"),
            len(r.get("history") or [])) for r in rows
           if r.get("status") != "passed" or r.get("attempts") != 2 or
           r.get("passed_attempt") != 2 or len(r.get("history") or []) != 2]
    check(len(rows) == N_TASKS and not bad,
          "each task: passed at attempt 2 of 2, both in its history", bad[:5])


try:
    run_test()
finally:
    umount(mnt)
    shutil.rmtree(work, ignore_errors=True)
finish()
