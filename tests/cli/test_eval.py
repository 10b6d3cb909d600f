"""test_eval.py - gryphgen eval on the project's example task set: exact counts with the
replay generator, the --results file (one line per task in the set's order, statuses,
history), the reference generator, stdin input, and resuming a set on the same database
(no new attempts), plus a changed task under an existing id."""

import json
import os
import shutil

from clitest import (EXAMPLES, check, db_rows, finish, gg, read_jsonl, summary, tmpdir)

work = tmpdir()
tasks = read_jsonl(EXAMPLES)
ids = [t["task_id"] for t in tasks]
check(len(tasks) >= 10, "the example set has 10 or more tasks", len(tasks))

# --- replay: the repair loop, with a database we resume below -----------------------
db = os.path.join(work, "run.db")
res1 = os.path.join(work, "results1.jsonl")
p = gg(["eval", "--jobs", "2", "--db", db, "--results", res1, EXAMPLES])
check(p.returncode == 0, "eval of the examples exits 0", p.stderr)
s = summary(p.stdout)
check(s.get("tasks") == 12, "12 tasks", p.stdout)
check(s.get("passed at first attempt") == 6, "6 passed at first attempt", p.stdout)
check(s.get("passed after repair") == 5, "5 passed after repair", p.stdout)
check(s.get("failed") == 1, "1 failed", p.stdout)
check(s.get("errors") == 0 and s.get("bad lines") == 0, "no errors", p.stdout)
check(s.get("cancelled") == 0, "none cancelled", p.stdout)
check(s.get("attempts") == 19 and s.get("attempts this run") == 19, "19 attempts", p.stdout)
check("wall time" in s and "tasks/s" in s, "wall time and rate printed", p.stdout)

results = read_jsonl(res1) if os.path.exists(res1) else []
check([r.get("task_id") for r in results] == ids, "results: one line per task, in order",
      [r.get("task_id") for r in results])
with open(res1) as f:
    check(len(f.read().splitlines()) == len(ids), "results: exactly one line per task")
by_id = {r.get("task_id"): r for r in results}

expect = {  # task: (status, attempts, passed_attempt)
    "py/add": ("passed", 1, 1),
    "py/reverse_words": ("passed", 2, 2),
    "py/fizzbuzz": ("passed", 2, 2),
    "py/is_palindrome": ("passed", 1, 1),
    "py/median": ("failed", 2, None),
    "py/roman": ("passed", 3, 3),
    "c/sum_array": ("passed", 1, 1),
    "c/str_reverse": ("passed", 2, 2),
    "c/gcd": ("passed", 2, 2),
}
for tid, (status, attempts, passed_attempt) in expect.items():
    r = by_id.get(tid, {})
    got = (r.get("status"), r.get("attempts"), r.get("passed_attempt"))
    check(got == (status, attempts, passed_attempt), "%s: %s after %d attempts" %
          (tid, status, attempts), got)
    hist = r.get("history") or []
    check(len(hist) == attempts and [h.get("n") for h in hist] == list(range(1, attempts + 1)),
          "%s: one history entry per attempt" % tid, [h.get("n") for h in hist])

# the repairs: a failing assertion, a Python syntax error, a C compile error
h = by_id.get("py/reverse_words", {}).get("history") or [{}]
check(h[0].get("passed") is False and "AssertionError" in (h[0].get("reason") or ""),
      "py/reverse_words: attempt 1 failed an assertion", h[0].get("reason"))
h = by_id.get("py/fizzbuzz", {}).get("history") or [{}]
a = h[0].get("analysis") or {}
check(a.get("ok") is False and len(a.get("findings") or []) > 0,
      "py/fizzbuzz: attempt 1 has an analysis finding", a)
check(h[0].get("passed") is False, "py/fizzbuzz: attempt 1 did not pass", h[0])
h = by_id.get("c/str_reverse", {}).get("history") or [{}]
a = h[0].get("analysis") or {}
check(a.get("ok") is False and h[0].get("execution") is None,
      "c/str_reverse: attempt 1 stopped at analysis (compile error), not executed", h[0])
r = by_id.get("py/median", {})
check(r.get("reason") and r.get("passed_attempt") is None,
      "py/median: failed with a reason", r.get("reason"))
r = by_id.get("py/roman", {})
check(r.get("best_attempt") == 3 and "CM" in (r.get("code") or ""),
      "py/roman: best attempt 3 with its code", r.get("best_attempt"))

# --- resume: the same set on the same database makes no new attempt -------------------
res2 = os.path.join(work, "results2.jsonl")
stored = db_rows(db, "SELECT count(*), max(created_at) FROM attempts")
p = gg(["eval", "--db", db, "--results", res2, EXAMPLES])
check(p.returncode == 0, "resumed eval exits 0", p.stderr)
s2 = summary(p.stdout)
check(s2.get("attempts this run") == 0, "resumed eval made no attempt", p.stdout)
check(stored and stored[0][0] == s.get("attempts") and
      db_rows(db, "SELECT count(*), max(created_at) FROM attempts") == stored,
      "resumed eval stored no attempt", stored)
check(s2.get("passed at first attempt") == 6 and s2.get("passed after repair") == 5 and
      s2.get("failed") == 1, "resumed eval reports the same counts", p.stdout)
results2 = read_jsonl(res2) if os.path.exists(res2) else []
check([(r.get("task_id"), r.get("status"), r.get("attempts")) for r in results2] ==
      [(r.get("task_id"), r.get("status"), r.get("attempts")) for r in results],
      "resumed results list every task with unchanged attempts")

# a changed task under an existing id is a bad line; the others still resume
changed = os.path.join(work, "changed.jsonl")
with open(changed, "w") as f:
    for t in tasks:
        t = dict(t)
        if t["task_id"] == "py/add":
            t["prompt"] = "Something else entirely."
        f.write(json.dumps(t) + "\n")
res3 = os.path.join(work, "results3.jsonl")
p = gg(["eval", "--db", db, "--results", res3, changed])
check(p.returncode == 2, "eval with a changed task exits 2 (bad input)", p.stderr)
check("line 1:" in p.stderr and "py/add" in p.stderr, "the changed task is reported by line",
      p.stderr)
s3 = summary(p.stdout)
check(s3.get("errors") == 1 and s3.get("bad lines") == 1 and s3.get("attempts this run") == 0,
      "one bad line, no new attempt", p.stdout)
r3 = read_jsonl(res3) if os.path.exists(res3) else [{}]
check(r3[0].get("line") == 1 and r3[0].get("status") == "error" and
      r3[0].get("task_id") == "py/add" and r3[0].get("reason"),
      "results: the changed task is an error line naming line and task", r3[0])

# --- reference generator: every canonical solution passes at once --------------------
p = gg(["eval", "--generator", "reference", "--quiet", EXAMPLES])
s = summary(p.stdout)
check(p.returncode == 0 and s.get("passed at first attempt") == 12 and s.get("attempts") == 12,
      "reference: 12 passed at first attempt", p.stdout + p.stderr)

# --- stdin ----------------------------------------------------------------------------
with open(EXAMPLES) as f:
    p = gg(["eval", "--jobs", "2", "-"], stdin=f)
s = summary(p.stdout)
check(p.returncode == 0 and s.get("tasks") == 12 and s.get("passed after repair") == 5 and
      s.get("failed") == 1, "eval - reads the set from stdin", p.stdout + p.stderr)

shutil.rmtree(work, ignore_errors=True)
finish()
