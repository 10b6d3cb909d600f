"""test_run.py - gryphgen run on one task file: a pretty-printed task over many lines runs
through the repair loop and its result is printed pretty-printed; the reference generator;
stdin; a C task; a bad task file (exit 2 naming the field); --db keeps the result."""

import json
import os
import shutil

from clitest import EXAMPLES, check, finish, gg, read_jsonl, tmpdir

work = tmpdir()
tasks = {t["task_id"]: t for t in read_jsonl(EXAMPLES)}


def write_task(name, task):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        json.dump(task, f, indent=4)  # pretty-printed over many lines
        f.write("\n")
    return path


def parse(stdout):
    try:
        return json.loads(stdout)
    except ValueError:
        return {}


roman = write_task("roman.json", tasks["py/roman"])
p = gg(["run", roman])
r = parse(p.stdout)
check(p.returncode == 0, "run exits 0", p.stderr)
check(len(p.stdout.splitlines()) > 10, "the result is pretty-printed", p.stdout[:200])
check(r.get("task_id") == "py/roman" and r.get("status") == "passed" and
      r.get("attempts") == 3 and r.get("passed_attempt") == 3 and len(r.get("history", [])) == 3,
      "py/roman passes at attempt 3 with 3 history records",
      {k: r.get(k) for k in ("task_id", "status", "attempts", "passed_attempt")})

p = gg(["run", "--generator", "reference", roman])
r = parse(p.stdout)
check(p.returncode == 0 and r.get("status") == "passed" and r.get("attempts") == 1,
      "run --generator reference passes at once", p.stdout[:300] + p.stderr)

median = write_task("median.json", tasks["py/median"])
p = gg(["run", median])
r = parse(p.stdout)
check(p.returncode == 0 and r.get("status") == "failed" and r.get("attempts") == 2 and
      r.get("reason"), "a failing task still exits 0 and says why", p.stdout[:300] + p.stderr)

p = gg(["run", "--max-attempts", "1", "-"],
       input=json.dumps({k: v for k, v in tasks["c/gcd"].items() if k != "budget"}))
r = parse(p.stdout)
check(p.returncode == 0 and r.get("task_id") == "c/gcd" and r.get("status") == "failed" and
      r.get("attempts") == 1, "run - reads stdin; --max-attempts 1 stops after one attempt",
      p.stdout[:300] + p.stderr)

p = gg(["run", write_task("str_reverse.json", tasks["c/str_reverse"])])
r = parse(p.stdout)
h = r.get("history") or [{}]
check(p.returncode == 0 and r.get("status") == "passed" and r.get("passed_attempt") == 2 and
      (h[0].get("analysis") or {}).get("ok") is False,
      "a C task repaired after a compile error", p.stdout[:300] + p.stderr)

bad = write_task("bad.json", {"task_id": "bad", "language": "python",
                              "budget": {"max_attempts": 0}})
p = gg(["run", bad])
check(p.returncode == 2 and "task 'bad'" in p.stderr and "budget.max_attempts" in p.stderr and
      p.stdout == "", "a bad task file: exit 2 naming task and field", p.stderr)
broken = os.path.join(work, "broken.json")
with open(broken, "w") as f:
    f.write('{"task_id": "x",\n "language": "python",\n')
p = gg(["run", broken])
check(p.returncode == 2 and "JSON" in p.stderr and p.stdout == "",
      "a truncated task file: exit 2", p.stderr)

# with --db the task is kept: a second run returns the stored result without new attempts
db = os.path.join(work, "run.db")
p1 = gg(["run", "--db", db, roman])
p2 = gg(["run", "--db", db, roman])
r1, r2 = parse(p1.stdout), parse(p2.stdout)
check(p1.returncode == 0 and p2.returncode == 0 and r1.get("attempts") == 3 and
      r1 == r2, "run --db twice gives the stored result", p2.stderr)

shutil.rmtree(work, ignore_errors=True)
finish()
