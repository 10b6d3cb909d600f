"""test_interrupt.py - Ctrl-C during gryphgen eval with --db: exit 130 with a message saying
how to resume, no summary; running the set again on the same database finishes it, making
an attempt only for the task that was interrupted."""

import json
import os
import shutil
import signal
import subprocess
import time

from clitest import (EXAMPLES, GRYPHGEN, check, env, finish, gg, no_sanitizer_report,
                     read_jsonl, summary, tmpdir)

work = tmpdir()
path = os.path.join(work, "slow.jsonl")
with open(EXAMPLES) as src, open(path, "w") as f:
    f.write(src.read())
    f.write(json.dumps({"task_id": "slow", "language": "python", "priority": -1000,
                        "test": "import time\ntime.sleep(1.5)\n",
                        "candidates": ["x = 1\n"]}) + "\n")
db = os.path.join(work, "run.db")
res = os.path.join(work, "results.jsonl")
with open(res, "w") as f:
    f.write('{"from": "an earlier run"}\n')

proc = subprocess.Popen([GRYPHGEN, "eval", "--jobs", "2", "--db", db, "--results", res, path],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
time.sleep(0.8)
proc.send_signal(signal.SIGINT)
out, err = proc.communicate(timeout=30)
no_sanitizer_report(err)
check(proc.returncode == 130, "SIGINT: exit 130", "exit %d: %s" % (proc.returncode, err))
check("interrupted" in err and db in err, "SIGINT: says how to resume", err)
check("tasks:" not in out, "SIGINT: no summary", out)
with open(res) as f:
    got = [json.loads(x) for x in f.read().splitlines()]
check(all("from" not in r and r.get("task_id") != "slow" for r in got),
      "SIGINT: the results file holds only the lines of the tasks that finished", got)
p = gg(["eval", "--db", db, "--results", res, path])
s = summary(p.stdout)
check(p.returncode == 0 and s.get("tasks") == 13 and s.get("passed at first attempt") == 7 and
      s.get("passed after repair") == 5 and s.get("failed") == 1,
      "the resumed run finishes the set", p.stdout + p.stderr)
check(s.get("attempts") == 20 and 1 <= s.get("attempts this run", -1) < 20,
      "the resumed run makes only the missing attempts", p.stdout)
rows = read_jsonl(res) if os.path.exists(res) else []
check(len(rows) == 13 and rows[-1].get("task_id") == "slow" and
      rows[-1].get("status") == "passed", "the interrupted task passed on resume",
      rows[-1:] if rows else None)

shutil.rmtree(work, ignore_errors=True)
finish()
