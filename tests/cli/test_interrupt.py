"""test_interrupt.py - Ctrl-C during gryphgen eval with --db: exit 130 with a message saying
how to resume, no summary; running the set again on the same database finishes it, making
an attempt only for the task that was interrupted. The interrupt is sent once the database
holds every other task's end and the last task's test is running (that test waits on a
file), so it lands mid-attempt however slow the machine is."""

import json
import os
import shutil
import signal
import subprocess

from clitest import (EXAMPLES, GATE_S, GRYPHGEN, check, ended_tasks, env, finish, gated_test,
                     gg, no_sanitizer_report, open_gate, read_jsonl, starts, summary, tmpdir,
                     wait_until)

work = tmpdir()
path = os.path.join(work, "slow.jsonl")
started = os.path.join(work, "slow.started")
go = os.path.join(work, "slow.go")
with open(EXAMPLES) as src, open(path, "w") as f:
    others = sum(1 for line in src if line.strip())
    src.seek(0)
    f.write(src.read())
    f.write(json.dumps({"task_id": "slow", "language": "python", "priority": -1000,
                        "test": gated_test(started, go),
                        "resources": {"timeout_s": GATE_S + 60},
                        "candidates": ["x = 1\n"]}) + "\n")
db = os.path.join(work, "run.db")
res = os.path.join(work, "results.jsonl")
with open(res, "w") as f:
    f.write('{"from": "an earlier run"}\n')

try:
    # rlimits: the gated test reads and writes files of this directory (see gated_test).
    cmd = [GRYPHGEN, "eval", "--jobs", "2", "--isolation", "rlimits", "--db", db,
           "--results", res, path]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env())
    ready = wait_until(lambda: proc.poll() is not None or
                       (ended_tasks(db) == others and starts(started) == 1))
    check(ready and proc.poll() is None,
          "the other %d tasks end in the database while the last one's test runs" % others,
          "exit %s, %d ended, slow started %d times" % (proc.poll(), ended_tasks(db),
                                                        starts(started)))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=GATE_S)
    no_sanitizer_report(err)
    check(proc.returncode == 130, "SIGINT: exit 130", "exit %d: %s" % (proc.returncode, err))
    check("interrupted" in err and db in err, "SIGINT: says how to resume", err)
    check("tasks:" not in out, "SIGINT: no summary", out)
    with open(res) as f:
        got = [json.loads(x) for x in f.read().splitlines()]
    check(all("from" not in r and r.get("task_id") != "slow" for r in got),
          "SIGINT: the results file holds only the lines of the tasks that finished", got)
    check(ended_tasks(db) == others, "SIGINT: the interrupted task did not end",
          ended_tasks(db))

    open_gate(go)
    p = gg(cmd[1:])
    s = summary(p.stdout)
    check(p.returncode == 0 and s.get("tasks") == 13 and s.get("passed at first attempt") == 7 and
          s.get("passed after repair") == 5 and s.get("failed") == 1,
          "the resumed run finishes the set", p.stdout + p.stderr)
    check(s.get("attempts") == 20 and s.get("attempts this run") == 1,
          "the resumed run makes only the interrupted task's attempt", p.stdout)
    check(starts(started) == 2, "the interrupted attempt ran again", starts(started))
    rows = read_jsonl(res) if os.path.exists(res) else []
    check(len(rows) == 13 and rows[-1].get("task_id") == "slow" and
          rows[-1].get("status") == "passed", "the interrupted task passed on resume",
          rows[-1:] if rows else None)
finally:
    open_gate(go)  # a test left waiting ends
    shutil.rmtree(work, ignore_errors=True)
finish()
