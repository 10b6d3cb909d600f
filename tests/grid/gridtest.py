"""gridtest.py - what the grid's process tests share: a free loopback port, starting
`gryphgen serve` and `gryphgen worker` as real processes (stopped by PID), waiting until the
hub shows what a test needs (its nodes, a node's jobs, its watchers), and reading the
database. Builds on tests/cli/clitest.py (wait_until: deadlines guard against hangs only)."""

import json
import os
import signal
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from clitest import (GRYPHGEN, GUARD_S, check, db_rows, env, finish, free_port,  # noqa: E402,F401
                     gg, no_sanitizer_report, require, skip, tmpdir, wait_until)

_procs = []
_logs = []
_log_of = {}  # pid: the log file of a process start() started


def start(args, log):
    """Starts gryphgen with args, stderr to the file log; returns the Popen."""
    _logs.append(log)
    f = open(log, "ab")
    p = subprocess.Popen([GRYPHGEN] + args, stdout=subprocess.DEVNULL, stderr=f, env=env())
    f.close()
    _procs.append(p)
    _log_of[p.pid] = log
    return p


def up(what, ready, *procs):
    """For what the rest of a script stands on (a server that answers, a worker that joined):
    waits until ready() is true or one of procs (Popens of start()) has ended, then requires
    that ready() came with every proc still running. Otherwise the script ends here, with
    the procs' logs, at once: a server that could not start (its port taken, a bad option)
    fails its own step instead of every later step waiting out its deadline."""
    def ended():
        return [p for p in procs if p.poll() is not None]
    got = wait_until(lambda: ended() or ready())
    gone = ended()
    detail = "; ".join("%s exited %s: %s" % (os.path.basename(_log_of.get(p.pid, "?")),
                                              p.returncode,
                                              read_log(_log_of.get(p.pid, ""))[-1500:])
                       for p in gone) or ("not within %d s" % GUARD_S if not got else None)
    return require(got and not gone, what, detail)


def kill(p, sig=signal.SIGKILL):
    if p.poll() is None:
        os.kill(p.pid, sig)
    try:
        p.wait(timeout=GUARD_S)
    except subprocess.TimeoutExpired:
        os.kill(p.pid, signal.SIGKILL)
        p.wait()


def stop_all():
    """Stops every process started (SIGTERM) and checks their logs for sanitizer reports."""
    for p in _procs:
        if p.poll() is None:
            kill(p, signal.SIGTERM)
    for log in sorted(set(_logs)):
        try:
            with open(log, errors="replace") as f:
                no_sanitizer_report(f.read(), os.path.basename(log))
        except OSError:
            pass


def status(endpoint):
    p = gg(["status", "--insecure", "--connect", endpoint], timeout=GUARD_S)
    try:
        return json.loads(p.stdout) if p.returncode == 0 else None
    except ValueError:
        return None


def nodes(endpoint):
    s = status(endpoint)
    return len(s.get("nodes", [])) if s else 0


def busy(endpoint, name):
    """How many jobs the hub has handed the node name and not seen answered (0 when the node
    is not connected)."""
    s = status(endpoint) or {}
    return sum(n.get("busy", 0) for n in s.get("nodes", []) if n.get("name") == name)


def query(db, sql, args=()):
    con = sqlite3.connect(db, timeout=GUARD_S)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def keygen(work, name):
    """Makes a CURVE key pair with `gryphgen keygen --out work/name`; returns (the secret key's
    file, the public key in Z85)."""
    prefix = os.path.join(work, name)
    p = gg(["keygen", "--out", prefix])
    check(p.returncode == 0, "keygen " + name, p.stderr)
    with open(prefix + ".pub") as f:
        line = f.read().strip()
    check(line.startswith("public: ") and len(line) == 48, name + ".pub holds a Z85 key", line)
    return prefix + ".key", line[len("public: "):]


def curve_keys(work, *others):
    """Key pairs (keygen) for "server", "worker", "submitter" and the names in others, as a
    dict of name: (secret key file, public key), and work/authorized_keys (0600, with a
    comment line as a user's file may have) listing the worker's and the submitter's keys;
    returns (keys, the authorized_keys file)."""
    keys = {name: keygen(work, name) for name in ("server", "worker", "submitter") + others}
    auth = os.path.join(work, "authorized_keys")
    with open(auth, "w") as f:
        f.write("# role key comment\nworker %s w1\nsubmitter %s s1\n" %
                (keys["worker"][1], keys["submitter"][1]))
    os.chmod(auth, 0o600)
    return keys, auth


def read_log(log):
    """The text of the log file log so far ("" while it does not exist)."""
    try:
        with open(log, errors="replace") as f:
            return f.read()
    except OSError:
        return ""
