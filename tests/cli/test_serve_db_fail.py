"""test_serve_db_fail.py - `gryphgen serve` whose database stops its scheduler while tasks run:
serve must not go on serving a grid that records nothing. It exits 1 with a message naming the
database and the cause, and without logging the same line over and over, when
- the database file is deleted under it (SQLite refuses to write a file that was moved or
  unlinked while open: the work goes on being acknowledged nowhere otherwise);
- another process keeps it locked past the writer's limit (GRYPHGEN_DB_LOCK_WAIT_S, 1 s
  here);
- its filesystem fills up (a small tmpfs, filled by the test once attempts are stored; needs
  root to mount: that case is skipped with a note where it cannot be mounted).
What was committed before stays readable."""

import os
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "grid"))
from gridtest import free_port, gg, read_log, start, stop_all  # noqa: E402
from clitest import (check, finish, mount_tmpfs, require, tmpdir, umount,  # noqa: E402
                     wait_until,
                     write_repair_set)

N_TASKS = 400
GUARD_S = 120  # against hangs only


def attempts(db):
    """Attempt rows stored so far (-1 while the database cannot be read)."""
    try:
        conn = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
        try:
            return conn.execute("SELECT count(*) FROM attempts").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return -1


def serve_until_broken(work, name, db, breaker, env=None):
    """Starts serve on db with a local worker, submits a set, calls breaker() once some
    attempts are stored, and returns (exit status or None when serve did not stop, log)."""
    ep = "tcp://127.0.0.1:%d" % free_port()
    log = os.path.join(work, name + ".log")
    saved = {k: os.environ.get(k) for k in env or {}}
    os.environ.update(env or {})
    try:
        proc = start(["serve", "--insecure", "--bind", ep, "--local", "1", "--db", db], log)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    require(wait_until(lambda: "serving on" in read_log(log) or proc.poll() is not None) and
            proc.poll() is None, "%s: serve started" % name, read_log(log))
    tasks = os.path.join(work, name + ".jsonl")
    write_repair_set(tasks, N_TASKS)
    p = gg(["submit", "--insecure", "--connect", ep, tasks])
    check(p.returncode == 0, "%s: the set was submitted" % name, p.stderr[-2000:])
    stored = wait_until(lambda: attempts(db) >= 10 or proc.poll() is not None, timeout=GUARD_S)
    check(stored and proc.poll() is None, "%s: attempts are stored while serve runs" % name,
          read_log(log)[-2000:])
    breaker()
    try:
        code = proc.wait(GUARD_S)
    except subprocess.TimeoutExpired:
        code = None
    return code, read_log(log)


def deleted(work):
    db = os.path.join(work, "gone.db")
    code, log = serve_until_broken(work, "deleted", db, lambda: os.unlink(db))
    check(code == 1, "a deleted database stops serve: exit 1",
          "exit %s; log: %s" % (code, log[-2000:]))
    check(db in log and "cannot write to the database" in log,
          "the message names the database", log[-2000:])
    check("deleted or moved" in log, "the message names the cause (the file is gone)",
          log[-2000:])
    check(len(log.splitlines()) <= 30, "the error is not logged over and over (%d lines)" %
          len(log.splitlines()), log[-3000:])


def locked(work):
    db = os.path.join(work, "locked.db")
    locker = []

    def lock():
        conn = sqlite3.connect(db, timeout=GUARD_S, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        locker.append(conn)

    code, log = serve_until_broken(work, "locked", db, lock, {"GRYPHGEN_DB_LOCK_WAIT_S": "1"})
    for conn in locker:
        conn.execute("ROLLBACK")
        conn.close()
    check(code == 1, "a lock held past the limit stops serve: exit 1",
          "exit %s; log: %s" % (code, log[-2000:]))
    check(db in log and "locked" in log and "the limit is 1 s" in log,
          "the message names the database, the lock and the limit", log[-2000:])
    check(attempts(db) >= 10, "what was committed is still there", attempts(db))


def full(work):
    mnt = os.path.join(work, "small")
    os.mkdir(mnt)
    if not mount_tmpfs(mnt, "size=16m,mode=0700"):
        print("note: cannot mount a small tmpfs here (needs root); the full-disk case is "
              "not checked")
        return
    try:
        db = os.path.join(mnt, "full.db")

        def fill():
            fd = os.open(os.path.join(mnt, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
            for size in (65536, 512):
                try:
                    while True:
                        os.write(fd, b"\0" * size)
                except OSError:
                    pass  # full
            os.close(fd)

        code, log = serve_until_broken(work, "full", db, fill)
        check(code == 1, "a full filesystem stops serve: exit 1",
              "exit %s; log: %s" % (code, log[-2000:]))
        check(db in log and "full" in log, "the message says the database's filesystem is full",
              log[-2000:])
        check(len(log.splitlines()) <= 30, "the error is not logged over and over (%d lines)" %
              len(log.splitlines()), log[-3000:])
        os.unlink(os.path.join(mnt, "filler"))
        check(attempts(db) >= 10, "what was committed is still there", attempts(db))
    finally:
        stop_all()
        umount(mnt)


if __name__ == "__main__":
    work = tmpdir()
    try:
        deleted(work)
        stop_all()
        locked(work)
        stop_all()
        full(work)
    finally:
        stop_all()
        shutil.rmtree(work, ignore_errors=True)
    finish()
