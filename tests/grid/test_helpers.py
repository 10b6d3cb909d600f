"""test_helpers.py - the test helpers that keep the process tests from failing on a busy
machine fail the way they promise:
- free_port (tests/common/testports.py) gives a port below the kernel's ephemeral range that
  nothing listens on, another one at each call, and never one whose lock another process
  holds (so two test scripts running at once cannot get the same port);
- up (gridtest) returns once what a script stands on is ready, and when the process it waits
  for ends first (a serve whose port is taken) it ends the script at once (SystemExit, the
  process's log in the message) instead of waiting on until its deadline."""

import io
import os
import socket
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

from gridtest import check, finish, free_port, start, status, stop_all, tmpdir, up
import clitest  # noqa: E402  (on the path through gridtest)
import testports  # noqa: E402  (on the path through clitest)

work = tmpdir()


def ephemeral_low():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        return int(f.read().split()[0])


def expect_exit(fn):
    """Runs fn; returns (whether it ended the script with SystemExit, what it printed). The
    failed check a require makes on the way is taken back: here it is the expected outcome."""
    out, err = io.StringIO(), io.StringIO()
    failed = clitest._failed
    try:
        with redirect_stdout(out), redirect_stderr(err):
            fn()
    except SystemExit:
        clitest._failed = failed
        return True, out.getvalue() + err.getvalue()
    return False, out.getvalue() + err.getvalue()


try:
    # ---- free_port ----
    ports = [free_port() for _ in range(40)]
    check(len(set(ports)) == len(ports), "free_port gives another port at each call", ports)
    low = ephemeral_low()
    if low - 20000 >= 1000:
        check(all(20000 <= p < low for p in ports),
              "the ports are below the ephemeral range (from %d)" % low, ports)
    for p in ports[:5]:
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            check(True, "port %d binds" % p)
        except OSError as e:
            check(False, "port %d binds" % p, str(e))
        finally:
            s.close()
    # Another process holds a port's lock: this one cannot reserve it.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; sys.path.insert(0, %r)\n"
         "import testports\nprint(testports.free_port(), flush=True)\nsys.stdin.read()\n"
         % os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        held = int(holder.stdout.readline())
        check(not testports._reserve(held),
              "a port reserved by another process is refused here", held)
        check(held not in [free_port() for _ in range(40)],
              "free_port never gives a port another process holds", held)
    finally:
        holder.stdin.close()
        holder.wait()

    # ---- up ----
    ep = "tcp://127.0.0.1:%d" % free_port()
    serve = start(["serve", "--insecure", "--bind", ep, "--db", os.path.join(work, "a.db")],
                  os.path.join(work, "a.log"))
    check(up("serve answers", lambda: status(ep) is not None, serve), "up returns when ready")

    # A second serve on the same port cannot bind and exits: up ends the script with its
    # log, and never asks ready() again once it has seen the process gone.
    second = start(["serve", "--insecure", "--bind", ep, "--db", os.path.join(work, "b.db")],
                   os.path.join(work, "b.log"))
    late = []

    def ready():
        # Whether the process has ended, without reaping it (up's own poll must see it): up
        # may ask once more when the end falls between its look and this call, never again.
        if second.returncode is not None or os.waitid(
                os.P_PID, second.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            late.append(1)
        return False
    ended, said = expect_exit(lambda: up("the second serve answers", ready, second))
    check(ended, "up ends the script when the process it waits for exits", said)
    check(second.returncode not in (None, 0), "the second serve exited with an error",
          second.returncode)
    check("the second serve answers" in said and "b.log exited" in said and
          "already in use" in said, "the failure names the step and shows the process's log",
          said)
    check(len(late) <= 1, "up stops waiting once the process has ended",
          "asked %d times after the end" % len(late))
    check(serve.poll() is None, "the first serve still runs")
finally:
    stop_all()
finish()
