"""test_eval_connect.py - `gryphgen eval --connect` prints the same summary as the embedded
`gryphgen eval` (apart from timings) and the same results file; submit/status/cancel/watch
work against `gryphgen serve`; bad usage exits 2."""

import json
import os
import shutil
import signal
import subprocess
import threading

from gridtest import (GUARD_S, check, env, finish, free_port, gg, nodes, skip, start, status,
                      stop_all, tmpdir, up, wait_until, GRYPHGEN)
from clitest import EXAMPLES

work = tmpdir()
ep = "tcp://127.0.0.1:%d" % free_port()


def strip(stdout):
    return [l for l in stdout.splitlines() if not l.startswith(("wall time", "tasks/s"))]


def results(path):
    with open(path) as f:
        rows = [json.loads(l) for l in f if l.strip()]
    for r in rows:  # timings and where it ran differ; the outcome must not
        r.pop("duration_ms", None)
        for h in r.get("history", []):
            for k in ("durations", "node", "lease", "execution"):
                h.pop(k, None)
    return rows


try:
    serve = start(["serve", "--insecure", "--bind", ep, "--db", os.path.join(work, "grid.db")],
                  os.path.join(work, "serve.log"))
    worker = start(["worker", "--insecure", "--connect", ep, "--slots", "2"],
                   os.path.join(work, "w.log"))
    up("the worker joins", lambda: nodes(ep) == 1, serve, worker)

    local = gg(["eval", "--quiet", "--results", os.path.join(work, "local.jsonl"), EXAMPLES])
    remote = gg(["eval", "--quiet", "--insecure", "--connect", ep, "--results",
                 os.path.join(work, "remote.jsonl"), EXAMPLES])
    check(local.returncode == 0 and remote.returncode == 0, "both evals exit 0",
          local.stderr + remote.stderr)
    check(strip(local.stdout) == strip(remote.stdout), "the same summary",
          local.stdout + "\n---\n" + remote.stdout)
    check(results(os.path.join(work, "local.jsonl")) ==
          results(os.path.join(work, "remote.jsonl")), "the same results file")

    # submit / status / cancel / watch
    task = os.path.join(work, "one.jsonl")
    with open(task, "w") as f:
        f.write(json.dumps({"task_id": "solo", "language": "python", "prompt": "x",
                            "entry_point": "f", "test": "assert f() == 1",
                            "candidates": ["def f():\n    return 1\n"]}) + "\n")
    # The watch runs until it has printed the task's end (its timeout only guards against
    # a hang); the task is submitted once the hub counts the watch among its watchers.
    watch = subprocess.Popen([GRYPHGEN, "watch", "--insecure", "--connect", ep, "--timeout-ms",
                              str(int(GUARD_S * 1000))],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env())
    watched = []
    reader = threading.Thread(target=lambda: watched.extend(watch.stdout), daemon=True)
    reader.start()
    check(wait_until(lambda: (status(ep) or {}).get("watchers", 0) >= 1),
          "the hub counts the watch among its watchers", status(ep))
    p = gg(["submit", "--insecure", "--connect", ep, "--wait", task])
    lines = p.stdout.splitlines()
    check(p.returncode == 0 and lines[0] == "solo" and '"status":"passed"' in lines[1],
          "submit --wait prints the id and the result", p.stdout + p.stderr)
    s = status(ep)
    check(s and s.get("passed", 0) >= 1 and len(s.get("nodes", [])) == 1,
          "status shows counters and the node", s)
    p = gg(["status", "--insecure", "--connect", ep, "solo"])
    check(p.returncode == 0 and json.loads(p.stdout).get("status") == "passed",
          "status TASK_ID", p.stdout + p.stderr)
    p = gg(["cancel", "--insecure", "--connect", ep, "solo"])
    check(p.returncode == 2 and "already ended" in p.stderr, "cancelling an ended task: exit 2",
          p.stderr)
    p = gg(["status", "--insecure", "--connect", ep, "nope"])
    check(p.returncode == 2, "status of an unknown task: exit 2", p.stderr)
    def solo_finished():
        return any(l.startswith("{") and json.loads(l).get("type") == "task.finished" and
                   json.loads(l).get("task_id") == "solo" for l in list(watched))
    check(wait_until(solo_finished), "watch streams the task's events", "".join(watched)[-1500:])
    watch.send_signal(signal.SIGINT)
    watch.wait(timeout=GUARD_S)
    reader.join(GUARD_S)
    err = watch.stderr.read()
    check(watch.returncode == 0 and "".join(watched).startswith("{"),
          "watch stops on SIGINT, having printed events", err[-500:])
    for args, words in ((["status", "a", "b"], "at most one task id"),
                        (["cancel"], "give one task id"),
                        (["cancel", "a", "b"], "give one task id"),
                        (["watch", "solo"], "takes no task id")):
        p = gg([args[0], "--insecure", "--connect", ep] + args[1:])
        check(p.returncode == 2 and words in p.stderr, "%s: exit 2" % " ".join(args), p.stderr)
    p = gg(["worker"])
    check(p.returncode == 2 and "--connect" in p.stderr, "worker without --connect: exit 2",
          p.stderr)
    p = gg(["serve"])
    check(p.returncode == 2 and "--bind" in p.stderr, "serve without --bind: exit 2", p.stderr)
    p = gg(["worker", "--insecure", "--connect", ep, "--label", "novalue"])
    check(p.returncode == 2 and "KEY=VALUE" in p.stderr, "a bad label: exit 2", p.stderr)
finally:
    stop_all()
    shutil.rmtree(work, ignore_errors=True)
finish()
