"""failover.py - the driver of bench/failover.sh: per round, two serve processes and a worker
given both endpoints; the first serve killed with -9 or frozen with SIGSTOP once it lists the
worker; the time until the second lists it. Prints each round and the medians."""

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import gryphgen as gg

GG, ROUNDS = sys.argv[1], int(sys.argv[2])


# Ports from the tests' shared picker (tests/common/testports.py): below the ephemeral range,
# reserved against concurrent test scripts, so a test running meanwhile cannot take them.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "common"))
from testports import free_port  # noqa: E402


def node_count(client):
    try:
        return len(client.status().get("nodes", []))
    except gg.GryphgenError:
        return -1


def wait_nodes(client, want, what, limit_s=60):
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if node_count(client) >= want:
            return time.monotonic()
        time.sleep(0.005)
    raise SystemExit("failover: the worker did not join %s within %d s" % (what, limit_s))


def one_round(how, work):
    a = "tcp://127.0.0.1:%d" % free_port()
    b = "tcp://127.0.0.1:%d" % free_port()
    procs = []
    try:
        for ep, name in ((a, "a"), (b, "b")):
            procs.append(subprocess.Popen(
                [GG, "serve", "--insecure", "--bind", ep, "--db",
                 os.path.join(work, "%s-%s.db" % (how, name))],
                stderr=subprocess.DEVNULL))
        with gg.Client(a, timeout=5, insecure=True) as ca, \
                gg.Client(b, timeout=5, insecure=True) as cb:
            wait_nodes(ca, 0, "A (serving)")  # both answer before the worker starts
            wait_nodes(cb, 0, "B (serving)")
            procs.append(subprocess.Popen(
                [GG, "worker", "--insecure", "--connect", "%s,%s" % (a, b), "--slots", "1",
                 "--executor", "noop", "--log-level", "info"],
                stderr=open(os.path.join(work, "worker-%s.log" % how), "w")))
            wait_nodes(ca, 1, "A")
            t0 = time.monotonic()
            os.kill(procs[0].pid, signal.SIGKILL if how == "kill" else signal.SIGSTOP)
            return wait_nodes(cb, 1, "B") - t0
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()


def main():
    times = {"kill": [], "stop": []}
    with tempfile.TemporaryDirectory() as work:
        for r in range(ROUNDS):
            for how in ("kill", "stop"):
                s = one_round(how, work)
                times[how].append(s)
                print("round %d: %-28s worker on B after %.3f s" %
                      (r + 1, "kill -9 (socket monitor)" if how == "kill"
                       else "SIGSTOP (silence, 3 x hb)", s), flush=True)
    mk, ms = statistics.median(times["kill"]), statistics.median(times["stop"])
    print("median: kill -9 %.3f s, SIGSTOP %.3f s (%d rounds each)" % (mk, ms, ROUNDS))
    print("target: worker on B within 2 s of kill -9: %s" % ("met" if mk <= 2.0 else "NOT met"))


main()
