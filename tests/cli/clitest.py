"""clitest.py - what the gryphgen command's test scripts share: running the command,
reading its summary, counting checks, and waiting for what a run does (a row in its
database, a file, a line of output) instead of sleeping: a busy machine may be many times
slower than this one, so a deadline here only guards against a hang. Each script gets the
built gryphgen as its first argument and the source root in $GG_SOURCE_ROOT, and ends with
"N passed, N failed"."""

import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from testports import free_port  # noqa: E402,F401  (re-exported: the scripts' port picker)

GRYPHGEN = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "gryphgen"
SOURCE_ROOT = os.environ.get("GG_SOURCE_ROOT",
                             os.path.dirname(os.path.dirname(os.path.dirname(
                                 os.path.abspath(__file__)))))
EXAMPLES = os.path.join(SOURCE_ROOT, "examples", "tasks.jsonl")

_passed = 0
_failed = 0


def check(cond, what, detail=None):
    """Counts one check; prints what failed (and detail) when cond is false."""
    global _passed, _failed
    if cond:
        _passed += 1
    else:
        _failed += 1
        print("FAIL: %s" % what, file=sys.stderr)
        if detail is not None:
            text = detail if isinstance(detail, str) else repr(detail)
            print("      " + text[:3000].replace("\n", "\n      "), file=sys.stderr)
    return cond


def require(cond, what, detail=None):
    """Like check, for what the rest of a script stands on (a server that started): when
    cond is false the script ends here with its summary, through the callers' finally
    blocks, instead of every later step waiting out its deadline."""
    if not check(cond, what, detail):
        raise SystemExit(finish_code())
    return cond


def finish_code():
    """Prints the last line; returns the exit status: non-zero when a check failed or none
    ran."""
    print("%d passed, %d failed" % (_passed, _failed))
    return 1 if _failed or not _passed else 0


def finish():
    """Prints the last line and exits: non-zero when a check failed or none ran."""
    sys.exit(finish_code())


def skip(why):
    print("skipped: " + why)
    sys.exit(77)


def env(**extra):
    e = dict(os.environ)
    e.setdefault("GRYPHGEN_PYTHON", "/usr/bin/python3")
    e.update(extra)
    return e


def no_sanitizer_report(stderr, what="gryphgen"):
    """Fails when a sanitizer build of gryphgen reported an error on stderr."""
    if "Sanitizer" in stderr or "runtime error:" in stderr:
        check(False, "%s: a sanitizer reported an error" % what, stderr[-3000:])


def gg(args, stdin=None, input=None, timeout=120, **kw):
    """Runs gryphgen with args; returns the CompletedProcess (text mode)."""
    p = subprocess.run([GRYPHGEN] + list(args), input=input, stdin=stdin,
                       capture_output=True, text=True, timeout=timeout, env=env(), **kw)
    no_sanitizer_report(p.stderr, "gryphgen " + " ".join(str(a) for a in args)[:200])
    return p


def summary(stdout):
    """The summary lines of eval as a dict of ints/floats (keys as printed)."""
    out = {}
    for line in stdout.splitlines():
        m = re.match(r"^([a-z/ ]+):\s+([0-9.]+)(?: \((?:bad lines|this run): ([0-9]+)\))?",
                     line)
        if m:
            out[m.group(1)] = float(m.group(2)) if "." in m.group(2) else int(m.group(2))
            if m.group(3) is not None:
                key = "bad lines" if m.group(1) == "errors" else "attempts this run"
                out[key] = int(m.group(3))
    return out


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def write_repair_set(path, n):
    """Writes a set of n Python tasks (t000, t001...) that take two attempts each: the first
    candidate fails, the second passes."""
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({
                "task_id": "t%03d" % i, "language": "python", "prompt": "add one",
                "stub": "def f(a):\n", "entry_point": "f",
                "test": "def check(candidate):\n    assert candidate(%d) == %d\n" % (i, i + 1),
                "candidates": ["    return a\n", "    return a + 1\n"]}) + "\n")


def write_jsonl(path, items, raw_lines=()):
    """Writes items (one JSON object a line), then raw_lines as they are, to path; returns
    path."""
    with open(path, "w") as f:
        for t in items:
            f.write(json.dumps(t) + "\n")
        for line in raw_lines:
            f.write(line + "\n")
    return path


def tmpdir():
    return tempfile.mkdtemp(prefix="gg-cli-test-")


# How long a wait may last before the test gives up: a guard against hangs, not a measure
# of speed (the suites' own meson timeouts are the outer bound).
GUARD_S = 90.0


def wait_until(cond, timeout=GUARD_S, step=0.05):
    """Calls cond until it returns a true value and returns that value; None when timeout
    seconds pass first."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= end:
            return None
        time.sleep(step)


def attempts_stored(conn):
    """Attempt rows in the database of conn (-1 while it has no attempts table yet)."""
    try:
        return conn.execute("SELECT count(*) FROM attempts").fetchone()[0]
    except sqlite3.Error:
        return -1


def lock_after_attempts(db, proc, n):
    """Once the run proc has stored n attempt rows in db, takes the database with BEGIN
    EXCLUSIVE on a connection of this process and returns that connection (the caller lets go
    with ROLLBACK and closes it); None when proc ended first."""
    wait_until(lambda: os.path.exists(db) or proc.poll() is not None)
    locker = sqlite3.connect(db, timeout=GUARD_S, isolation_level=None)
    if wait_until(lambda: proc.poll() is None and attempts_stored(locker) >= n or
                  proc.poll() is not None, step=0.005) and proc.poll() is None:
        locker.execute("BEGIN EXCLUSIVE")
        return locker
    locker.close()
    return None


def mount_tmpfs(mnt, options):
    """Mounts a tmpfs with options (as for mount -o) on the directory mnt; False where that is
    not allowed (it needs root)."""
    try:
        return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", mnt],
                              capture_output=True).returncode == 0
    except OSError:
        return False


# How long umount is tried again while the mount is busy before it is detached instead. Not
# a failure either way: the bound only says when to stop asking.
UMOUNT_S = 10.0


def umount(mnt):
    """Unmounts mnt once nothing on it is open any more (umount succeeds), trying again up to
    UMOUNT_S; a mount still busy then (another program keeps a file on it open: stress-ng's io
    stressor opens every mount) is detached now, and the kernel frees it when that program
    lets go."""
    if not wait_until(lambda: subprocess.run(["umount", mnt], capture_output=True).returncode
                      == 0, timeout=UMOUNT_S, step=0.1):
        subprocess.run(["umount", "-l", mnt], capture_output=True)


class Streams:
    """Reads a Popen's stdout and stderr (text) as they come, on threads, so a full pipe never
    stalls the process; the text read so far is in .out and .err, and wait() waits for the
    process and the rest of its output."""

    def __init__(self, proc):
        self.proc = proc
        self.out = self.err = ""
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._read, args=(name, stream), daemon=True)
                         for name, stream in (("out", proc.stdout), ("err", proc.stderr))]
        for t in self._threads:
            t.start()

    def _read(self, name, stream):
        for line in stream:
            with self._lock:
                setattr(self, name, getattr(self, name) + line)

    def wait(self, timeout=GUARD_S):
        """Waits until the process ends (killed after timeout: a guard against hangs) and its
        output is read; returns (out, err), err checked for sanitizer reports."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for t in self._threads:
            t.join()
        no_sanitizer_report(self.err)
        return self.out, self.err


def db_rows(db, sql, args=()):
    """The rows of sql on the SQLite database at db, opened read-only (never created); []
    while the database does not exist yet or cannot be read."""
    if not os.path.exists(db):
        return []
    try:
        con = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(db), uri=True, timeout=30)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return []


def ended_tasks(db):
    """How many tasks of the database at db have ended (committed with a final status)."""
    rows = db_rows(db, "SELECT count(*) FROM tasks WHERE status NOT IN ('queued', 'running')")
    return rows[0][0] if rows else 0


GATE_S = 600  # a gated test's own guard, in seconds


def gated_test(started, go):
    """A task's Python test that appends a line to the file started when it runs, then waits
    until the file go exists: the attempt stays in flight exactly as long as the test wants.
    Jobs see the host's files only below the namespace sandbox, so a run of a task with this
    test uses --isolation rlimits; the task sets resources.timeout_s above the wait's own
    guard (GATE_S)."""
    return ("import os, time\n"
            "with open(%r, 'a') as f:\n"
            "    f.write('started\\n')\n"
            "end = time.monotonic() + %d\n"
            "while not os.path.exists(%r) and time.monotonic() < end:\n"
            "    time.sleep(0.02)\n"
            "assert os.path.exists(%r), 'the gate never opened'\n" % (started, GATE_S, go, go))


def starts(path):
    """How many times a gated test started (lines in its started file)."""
    try:
        with open(path) as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def open_gate(go):
    with open(go, "w"):
        pass
