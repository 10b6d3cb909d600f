"""gridtest.py - what the grid's process tests share: a free loopback port, starting
`gryphgen serve` and `gryphgen worker` as real processes (stopped by PID), waiting until the
hub answers, and reading the database. Builds on tests/cli/clitest.py."""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from clitest import (GRYPHGEN, check, env, finish, gg, no_sanitizer_report,  # noqa: E402,F401
                     skip, tmpdir)

_procs = []
_logs = []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(args, log):
    """Starts gryphgen with args, stderr to the file log; returns the Popen."""
    _logs.append(log)
    f = open(log, "ab")
    p = subprocess.Popen([GRYPHGEN] + args, stdout=subprocess.DEVNULL, stderr=f, env=env())
    f.close()
    _procs.append(p)
    return p


def kill(p, sig=signal.SIGKILL):
    if p.poll() is None:
        os.kill(p.pid, sig)
    try:
        p.wait(timeout=10)
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
    p = gg(["status", "--insecure", "--connect", endpoint], timeout=30)
    try:
        return json.loads(p.stdout) if p.returncode == 0 else None
    except ValueError:
        return None


def wait_until(cond, timeout=15.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return None


def nodes(endpoint):
    s = status(endpoint)
    return len(s.get("nodes", [])) if s else 0


def query(db, sql, args=()):
    con = sqlite3.connect(db, timeout=10)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()
