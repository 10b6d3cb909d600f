"""test_scale_demand.py - `gryphgen scale --engine slurm` counts only the demand its workers
can serve: the orchestrator answers a `status` with "demand" (gg_client_demand) for the
workers' capabilities (their --label options), so tasks that need a label the scaler's
workers lack start no job, and a task they can run does. Slurm's commands are small fakes on
PATH (sbatch, squeue, scancel keeping a list of jobs in a file), as the real single-node
Slurm of test_scale_slurm.py needs root. (gg_client_demand's refusals of bad questions are
in tests/grid/test_grid.c.)"""

import json
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "grid"))
from gridtest import (GUARD_S, GRYPHGEN, check, env, finish, free_port, gg,  # noqa: E402
                      read_log, start, status, stop_all, tmpdir, up, wait_until)

work = tmpdir()
fake = os.path.join(work, "bin")
os.mkdir(fake)
jobs = os.path.join(work, "jobs")
calls = os.path.join(work, "sbatch.calls")
open(jobs, "w").close()
scripts = {
    "squeue": """#!/bin/sh
[ "$1" = --version ] && { echo "slurm 23.02 (fake)"; exit 0; }
cat "%(jobs)s"
""",
    "sbatch": """#!/bin/sh
cat >/dev/null
n=$(( $(wc -l < "%(calls)s" 2>/dev/null || echo 0) + 1 ))
echo "$*" >> "%(calls)s"
echo "$((1000 + n)) PENDING" >> "%(jobs)s"
echo $((1000 + n))
""",
    "scancel": """#!/bin/sh
for id in "$@"; do
  grep -v "^$id " "%(jobs)s" > "%(jobs)s.new"; mv "%(jobs)s.new" "%(jobs)s"
done
""",
}
for name, text in scripts.items():
    path = os.path.join(fake, name)
    with open(path, "w") as f:
        f.write(text % {"jobs": jobs, "calls": calls})
    os.chmod(path, 0o755)


def task(task_id, labels):
    return json.dumps({"task_id": task_id, "language": "python", "prompt": "",
                       "entry_point": "f", "test": "assert f() == 1\n",
                       "candidates": ["def f():\n    return 1\n"],
                       "requirements": {"labels": labels}})


def sbatch_calls():
    try:
        with open(calls) as f:
            return f.read().splitlines()
    except OSError:
        return []


ep = "tcp://127.0.0.1:%d" % free_port()
scaler = None
try:
    serve = start(["serve", "--insecure", "--bind", ep, "--db", os.path.join(work, "grid.db")],
                  os.path.join(work, "serve.log"))
    up("serve answers", lambda: status(ep) is not None, serve)
    mars = os.path.join(work, "mars.jsonl")
    with open(mars, "w") as f:
        for i in range(3):
            f.write(task("mars%d" % i, {"zone": "mars"}) + "\n")
    p = gg(["submit", "--insecure", "--connect", ep, mars], timeout=GUARD_S)
    check(p.returncode == 0, "three tasks for zone=mars are queued", p.stderr)

    log = os.path.join(work, "scale.log")
    e = dict(env())
    e["PATH"] = fake + os.pathsep + e.get("PATH", "")
    scaler = subprocess.Popen([GRYPHGEN, "scale", "--insecure", "--connect", ep, "--engine",
                               "slurm", "--max-jobs", "3", "--poll-ms", "200", "--idle-s", "1",
                               "--label", "zone=earth", "--log-level", "info"],
                              stdout=subprocess.DEVNULL, stderr=open(log, "ab"), env=e)
    # Its first look is logged (the target changes from none): 0 tasks for its workers.
    check(wait_until(lambda: "target" in read_log(log)), "the scaler looks at the demand",
          read_log(log))
    check("0 tasks its workers can run" in read_log(log) and "target 0" in read_log(log),
          "tasks that need zone=mars are no demand for zone=earth workers", read_log(log))
    check(sbatch_calls() == [], "... and no job is started for them", sbatch_calls())

    earth = os.path.join(work, "earth.jsonl")
    with open(earth, "w") as f:
        f.write(task("earth0", {"zone": "earth"}) + "\n")
    p = gg(["submit", "--insecure", "--connect", ep, earth], timeout=GUARD_S)
    check(p.returncode == 0, "a task for zone=earth is queued", p.stderr)
    check(wait_until(lambda: len(sbatch_calls()) >= 1), "a task its workers can run starts a job",
          read_log(log))
    check(wait_until(lambda: "1 tasks its workers can run" in read_log(log)),
          "the demand counts that one task only", read_log(log))
    check(len(sbatch_calls()) == 1, "one job, not one per queued task", sbatch_calls())
    scaler.send_signal(signal.SIGTERM)
    check(scaler.wait(timeout=GUARD_S) == 0, "SIGTERM ends the scaler", read_log(log))
    check(open(jobs).read().strip() == "", "... and cancels its job", open(jobs).read())

finally:
    if scaler is not None and scaler.poll() is None:
        scaler.kill()
        scaler.wait()
    stop_all()
finish()
