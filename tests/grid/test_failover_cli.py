"""test_failover_cli.py - the commands given several endpoints (issue 20): `--connect EP1,EP2`
for worker, submit, status and eval --connect. Two `gryphgen serve` processes sharing
nothing; the worker starts on the first, which is killed with -9: the worker moves to the
second, and the client commands, listing the dead one first, are answered by the second. A
malformed list (an empty entry, 17 endpoints, a non-loopback endpoint without keys) is a
usage error (exit 2) naming what is wrong."""

import json
import os

from gridtest import (check, finish, free_port, gg, kill, nodes, read_log, start, status,
                      stop_all, tmpdir, up)

work = tmpdir()
a = "tcp://127.0.0.1:%d" % free_port()
b = "tcp://127.0.0.1:%d" % free_port()
both = "%s,%s" % (a, b)
try:
    # Malformed lists are refused before anything connects.
    for bad, says in (("%s," % a, "empty"), (",".join("tcp://127.0.0.1:%d" % (21200 + i)
                                                       for i in range(17)), "16"),
                      ("%s,tcp://10.1.2.3:5555" % a, "10.1.2.3")):
        for cmd in (["status"], ["worker", "--slots", "1"]):
            p = gg(cmd + ["--insecure", "--connect", bad])
            check(p.returncode == 2 and says in p.stderr,
                  "%s refuses --connect %s" % (cmd[0], bad[:40]),
                  "rc %s: %s" % (p.returncode, p.stderr[-400:]))

    serve_a = start(["serve", "--insecure", "--bind", a, "--db", os.path.join(work, "a.db")],
                    os.path.join(work, "a.log"))
    serve_b = start(["serve", "--insecure", "--bind", b, "--db", os.path.join(work, "b.db")],
                    os.path.join(work, "b.log"))
    # Both serve before the worker starts (else it would join whichever answers first).
    up("both orchestrators answer", lambda: status(a) is not None and status(b) is not None,
       serve_a, serve_b)
    wlog = os.path.join(work, "worker.log")
    worker = start(["worker", "--insecure", "--connect", both, "--slots", "1", "--log-level",
                    "info"], wlog)
    up("the worker joins the first", lambda: nodes(a) == 1, serve_a, worker)
    check(nodes(b) == 0, "and not the second")

    kill(serve_a)
    up("killed with -9, the first loses the worker to the second", lambda: nodes(b) == 1,
       serve_b, worker)
    check("reconnecting to %s" % b in read_log(wlog), "the worker says where it went",
          read_log(wlog)[-1500:])

    task = os.path.join(work, "task.jsonl")
    with open(task, "w") as f:
        f.write(json.dumps({"task_id": "fo1", "language": "python", "stub": "def f():\n",
                            "entry_point": "f", "test": "assert f() == 1\n",
                            "candidates": ["    return 1\n"]}) + "\n")
    p = gg(["submit", "--insecure", "--connect", both, "--wait", task])
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    check(p.returncode == 0 and lines and lines[-1].get("status") == "passed",
          "submit --connect DEAD,LIVE --wait passes on the second", p.stdout + p.stderr[-600:])
    p = gg(["status", "--insecure", "--connect", both, "fo1"])
    check(p.returncode == 0 and json.loads(p.stdout or "{}").get("status") == "passed",
          "status --connect DEAD,LIVE", p.stdout + p.stderr[-400:])
    res = os.path.join(work, "results.jsonl")
    p = gg(["eval", "--quiet", "--insecure", "--connect", both, "--results", res, task])
    check(p.returncode == 0, "eval --connect DEAD,LIVE exits 0", p.stdout + p.stderr[-600:])
finally:
    stop_all()
finish()
