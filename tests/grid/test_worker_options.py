"""test_worker_options.py - the options of where tasks run, given to `gryphgen worker` (where
`eval --connect` sends them), take effect there: a worker started with --isolation none runs
its jobs at that level, and says so in each attempt's execution record."""

import json
import os
import shutil

from gridtest import check, finish, free_port, gg, nodes, start, stop_all, tmpdir, up

work = tmpdir()
ep = "tcp://127.0.0.1:%d" % free_port()
try:
    serve = start(["serve", "--insecure", "--bind", ep, "--db", os.path.join(work, "grid.db")],
                  os.path.join(work, "serve.log"))
    worker = start(["worker", "--insecure", "--connect", ep, "--slots", "1", "--isolation",
                    "none"], os.path.join(work, "worker.log"))
    up("the worker joins", lambda: nodes(ep) == 1, serve, worker)
    tasks = os.path.join(work, "tasks.jsonl")
    with open(tasks, "w") as f:
        f.write(json.dumps({"task_id": "iso", "language": "python", "stub": "def f():\n",
                            "entry_point": "f", "test": "assert f() == 1\n",
                            "candidates": ["    return 1\n"]}) + "\n")
    res = os.path.join(work, "results.jsonl")
    p = gg(["eval", "--quiet", "--insecure", "--connect", ep, "--results", res, tasks])
    check(p.returncode == 0, "eval --connect exits 0", p.stdout + p.stderr)
    rows = [json.loads(l) for l in open(res)] if os.path.exists(res) else []
    hist = rows[0].get("history", []) if rows else []
    iso = (hist[0].get("execution") or {}).get("isolation") if hist else None
    check(rows and rows[0].get("status") == "passed" and iso == "none",
          "the job ran at the worker's --isolation none", rows)
    p = gg(["eval", "--quiet", "--insecure", "--connect", ep, "--isolation", "none", tasks])
    check(p.returncode == 2 and "gryphgen worker --isolation" in p.stderr,
          "eval --connect --isolation is refused, naming the worker's option", p.stderr)
finally:
    stop_all()
    shutil.rmtree(work, ignore_errors=True)
finish()
