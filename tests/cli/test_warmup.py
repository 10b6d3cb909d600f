"""test_warmup.py - the interpreter of Python jobs (the zygote they are forked from) is
warmed only for a task set that has a Python task, once, when the first one is read: a set
of C tasks starts none (eval and run), a set whose Python task comes after C tasks warms it
once. Counted from the command's debug log ("python warm-up: ..."), one line per warm-up.
Failure path: a Python task that is not valid JSON warms nothing and is a bad line."""

import json
import os

from clitest import (EXAMPLES, check, finish, gg, read_jsonl, require, summary, tmpdir,
                     write_jsonl)

work = tmpdir()
tasks = read_jsonl(EXAMPLES)
c_tasks = [t for t in tasks if t.get("language") == "c"]
py_tasks = [t for t in tasks if t.get("language") == "python"]
require(len(c_tasks) >= 2 and len(py_tasks) >= 2, "the example set has C and Python tasks",
        [t.get("language") for t in tasks])


def write_set(name, items, raw_lines=()):
    return write_jsonl(os.path.join(work, name), items, raw_lines)


def warmups(stderr):
    return [line for line in stderr.splitlines() if "python warm-up:" in line]


def eval_set(path):
    return gg(["eval", "--log-level", "debug", "--jobs", "2", path])


# --- C tasks only: every task runs, no Python interpreter is started for them ----------
p = eval_set(write_set("c_only.jsonl", c_tasks))
check(p.returncode == 0, "eval of C tasks exits 0", p.stderr[-2000:])
check(summary(p.stdout).get("tasks") == len(c_tasks), "every C task ran", p.stdout)
check(warmups(p.stderr) == [], "a set of C tasks warms no Python interpreter",
      warmups(p.stderr))

# --- C tasks first, then Python ones: one warm-up, and it worked ------------------------
p = eval_set(write_set("mixed.jsonl", c_tasks + py_tasks[:2]))
check(p.returncode in (0, 1), "eval of a mixed set ends", p.stderr[-2000:])
check(summary(p.stdout).get("tasks") == len(c_tasks) + 2, "every task ran", p.stdout)
w = warmups(p.stderr)
check(len(w) == 1, "the first Python task warms the interpreter once", w)
check(len(w) == 1 and " ready " in w[0], "the warm-up ran its interpreter", w)

# --- a malformed line that mentions python warms nothing (and is a bad line) -------------
p = eval_set(write_set("bad.jsonl", c_tasks[:1], ['{"language": "python", "task_id": ']))
check(p.returncode == 2, "a bad line is a usage error", (p.returncode, p.stderr[-2000:]))
check(warmups(p.stderr) == [], "a malformed line warms nothing", warmups(p.stderr))

# --- run: a C task warms nothing, a Python task once -----------------------------------
for lang, task, want in (("C", c_tasks[0], 0), ("Python", py_tasks[0], 1)):
    path = os.path.join(work, "%s_task.json" % lang)
    with open(path, "w") as f:
        json.dump(task, f)
    p = gg(["run", "--log-level", "debug", path])
    check(p.returncode in (0, 1), "run of a %s task ends" % lang, p.stderr[-2000:])
    check(len(warmups(p.stderr)) == want,
          "run of a %s task warms the interpreter %d time(s)" % (lang, want), warmups(p.stderr))

finish()
