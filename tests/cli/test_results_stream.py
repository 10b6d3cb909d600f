"""test_results_stream.py - the --results file while a run goes and after it: each task's line
is there as soon as the task ends, so Ctrl-C and kill -9 leave the lines of the tasks that
finished; a run on the same database rewrites the file, so after a resume it holds every task
exactly once; and every line is JSON in valid UTF-8 whatever the input or the programs' output
held (a task id that is not UTF-8 and an escaped NUL in a test are bad lines naming the field;
a program that prints bytes that are not UTF-8 has them replaced)."""

import json
import os
import shutil
import signal
import subprocess

from clitest import (GATE_S, GRYPHGEN, check, env, finish, gated_test, gg, no_sanitizer_report,
                     open_gate, summary, tmpdir, wait_until)

work = tmpdir()
os.chmod(work, 0o755)  # jobs may run as another user: they must see the marker
# (--isolation rlimits: below the namespace sandbox a job does not see the host's files)
marker = os.path.join(work, "go")
started = os.path.join(work, "slow.started")
path = os.path.join(work, "set.jsonl")
db = os.path.join(work, "run.db")
res = os.path.join(work, "results.jsonl")

deep = '{"language": "c", "meta": ' + "[" * 3000 + "]" * 3000 + "}"
with open(path, "wb") as f:
    # 1: a task id with bytes that are not UTF-8
    f.write(b'{"task_id": "id-\xff\xfe", "language": "c"}\n')
    # 2: an escaped NUL in a test: cJSON would cut the test there and the task would pass
    f.write(json.dumps({"task_id": "nul", "language": "python",
                        "test": "x = '\x00'\nassert False\n",
                        "candidates": ["x = 1\n"]}).encode() + b"\n")
    # 3: nested too deeply
    f.write(deep.encode() + b"\n")
    # 4: passes at once
    f.write(json.dumps({"task_id": "fast", "language": "python", "test": "assert True\n",
                        "candidates": ["x = 1\n"]}).encode() + b"\n")
    # 5: prints bytes that are not UTF-8, then fails
    f.write(json.dumps({"task_id": "badout", "language": "python",
                        "budget": {"max_attempts": 1},
                        "test": "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe \\xc3')\n"
                                "sys.stdout.flush()\nassert False\n",
                        "candidates": ["x = 1\n"]}).encode() + b"\n")
    # 6: runs until the test opens the gate (lowest priority: it starts last)
    f.write(json.dumps({"task_id": "slow", "language": "python", "priority": -1000,
                        "resources": {"timeout_s": GATE_S + 60},
                        "test": gated_test(started, marker),
                        "candidates": ["x = 1\n"]}).encode() + b"\n")
FINISHED = {"fast", "badout"}  # the tasks that end without the marker
BAD = 3


def lines_of(p):
    """The complete lines of the file (bytes), and whether each is strict UTF-8 JSON."""
    try:
        with open(p, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return [], []
    rows, bad = [], []
    for raw in data.split(b"\n")[:-1]:  # a last line without its newline is not complete
        try:
            rows.append(json.loads(raw.decode("utf-8", errors="strict")))
        except ValueError as e:
            bad.append((raw[:200], str(e)))
    return rows, bad


def wait_for_lines(proc, want, what):
    """Waits until the file holds `want` lines while the run goes; returns its lines."""
    seen = {"rows": []}

    def enough():
        seen["rows"] = lines_of(res)[0]
        return proc.poll() is None and len(seen["rows"]) >= want

    if not wait_until(lambda: enough() or proc.poll() is not None) or not enough():
        check(False, "%s: %d lines appear while the run goes" % (what, want),
              "exit %s, lines %r" % (proc.poll(), seen["rows"]))
    return seen["rows"]


def start():
    return subprocess.Popen([GRYPHGEN, "eval", "--quiet", "--jobs", "2", "--isolation", "rlimits",
                             "--db", db, "--results", res, path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env())


def check_partial(rows, bad, what):
    check(not bad, "%s: every line is UTF-8 JSON" % what, bad)
    ids = [r.get("task_id") for r in rows if r.get("status") != "error" or "line" not in r]
    check(sorted(ids) == sorted(FINISHED), "%s: the finished tasks, each once" % what, ids)
    errs = [r for r in rows if "line" in r]
    check(sorted(r["line"] for r in errs) == [1, 2, 3], "%s: the bad lines, each once" % what,
          errs)


# --- run 1: Ctrl-C once the tasks that can finish have finished -------------------------
with open(res, "w") as f:
    f.write('{"from": "an earlier run"}\n')
proc = start()
wait_for_lines(proc, BAD + len(FINISHED), "SIGINT run")
proc.send_signal(signal.SIGINT)
out, err = proc.communicate(timeout=120)
err = err.decode("utf-8", "replace")
no_sanitizer_report(err)
check(proc.returncode == 130, "SIGINT: exit 130", "exit %d: %s" % (proc.returncode, err))
rows, bad = lines_of(res)
check_partial(rows, bad, "SIGINT")
by = {r.get("task_id"): r for r in rows}
check(by.get("fast", {}).get("status") == "passed", "SIGINT: fast passed", by.get("fast"))
errs = {r["line"]: r for r in rows if "line" in r}
r1, r2, r3 = errs.get(1, {}), errs.get(2, {}), errs.get(3, {})
check(r1.get("task_id") is None and "field 'task_id'" in r1.get("reason", "") and
      "UTF-8" in r1.get("reason", ""), "a task id that is not UTF-8 is refused, naming it", r1)
check(r2.get("task_id") == "nul" and "field 'test'" in r2.get("reason", "") and
      "NUL" in r2.get("reason", ""), "an escaped NUL in a test is refused, naming it", r2)
check("nested too deeply (limit 1000)" in r3.get("reason", "") and
      "malformed" not in r3.get("reason", ""), "too deep JSON is called so", r3)
bo = by.get("badout", {})
hist = bo.get("history") or [{}]
stdout = ((hist[0] or {}).get("execution") or {}).get("stdout", "")
check(bo.get("status") == "failed" and "\ufffd" in stdout,
      "output that is not UTF-8 is replaced, the line stays JSON", bo)

# --- run 2: the same set on the same database, killed with -9 ---------------------------
proc = start()
wait_for_lines(proc, BAD + len(FINISHED), "kill -9 run")
proc.kill()
proc.communicate(timeout=120)
rows, bad = lines_of(res)
check_partial(rows, bad, "kill -9 (the resumed run rewrote the file)")

# --- run 3: the slow task may finish now; the file holds every task exactly once --------
open_gate(marker)
p = gg(["eval", "--quiet", "--jobs", "2", "--isolation", "rlimits", "--db", db,
        "--results", res, path], timeout=300)
s = summary(p.stdout)
check(s.get("tasks") == 6 and s.get("bad lines") == 3, "resumed run: 6 lines, 3 bad",
      p.stdout + p.stderr)
rows, bad = lines_of(res)
check(not bad, "resumed run: every line is UTF-8 JSON", bad)
ids = [r.get("task_id") if "line" not in r else r["line"] for r in rows]
check(ids == [1, 2, 3, "fast", "badout", "slow"],
      "resumed run: every task once, in the set's order", ids)
check(rows and rows[-1].get("status") == "passed", "resumed run: slow passed", rows[-1:])
check(not [n for n in os.listdir(work) if ".tmp-" in n], "no temporary file is left",
      os.listdir(work))

shutil.rmtree(work, ignore_errors=True)
finish()
