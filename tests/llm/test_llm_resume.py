"""test_llm_resume.py - `gryphgen eval --generator openai` killed (-9) and resumed over the
same database, against the fake chat-completions server (fake_llm_server.py): the resumed
run reuses the answers the journal kept in the orchestrator's database without asking the
server again, and the tokens a run budget (GRYPHGEN_MAX_TOKENS) has spent still count
after the resume. Also `gryphgen worker --journal PATH` keeps a journal file of its own.
Arguments: the built gryphgen, the fake server script and what to test: "journal" (the
journal and the worker's option) or "budget" (the token budget across the resume). Prints
"N passed, N failed"; exit 77 when /usr/bin/python3 (the tasks' runtime) is missing.

The kill lands on what the run did, not after a delay: the server's count of requests, the
database's rows, and tests that note when they start in a file and then wait for another
file (so an attempt stays in flight until the test says so, on a machine of any speed)."""

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cli"))
from clitest import (GATE_S, GRYPHGEN, GUARD_S, check, db_rows, finish,  # noqa: E402
                     gated_test, no_sanitizer_report, open_gate, skip, starts, wait_until)

SERVER = os.path.abspath(sys.argv[2])
PART = sys.argv[3] if len(sys.argv) > 3 else "journal"
KEY = "sk-test-resume-77aa88bb99cc"

if not os.access("/usr/bin/python3", os.X_OK):
    skip("/usr/bin/python3 is needed")

work = tempfile.mkdtemp(prefix="gg-llm-resume-")
server = subprocess.Popen(["/usr/bin/python3", SERVER], stdout=subprocess.PIPE, text=True)
port = int(server.stdout.readline().split()[1])
base = "http://127.0.0.1:%d" % port


def stats():
    # The fake server's counters, asked again when a reply arrives cut short (seen once on a
    # loaded machine: the headers came, the 39-byte body did not); a server that keeps failing
    # still fails the test.
    for attempt in range(3):
        try:
            with urllib.request.urlopen(base + "/stats", timeout=GUARD_S) as r:
                return json.loads(r.read())
        except (http.client.IncompleteRead, ConnectionResetError):
            if attempt == 2:
                raise


def asked(model):
    return stats()["models"].get(model, 0)


def env(model, **extra):
    e = {k: v for k, v in os.environ.items()
         if not k.startswith(("GRYPHGEN_LLM_", "OPENAI_", "GRYPHGEN_MAX_TOKENS"))
         and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    e.update(GRYPHGEN_LLM_URL=base + "/v1", GRYPHGEN_LLM_MODEL=model,
             GRYPHGEN_LLM_API_KEY=KEY, GRYPHGEN_PYTHON="/usr/bin/python3")
    e.update(extra)
    return e


def gate(name):
    """(started, go): the files of a gated test (see task)."""
    return os.path.join(work, name + ".started"), os.path.join(work, name + ".go")


def task(task_id, priority=0, gated=None):
    """A task whose test, with gated = gate(...), appends a line to the started file and
    waits until the go file exists before it checks the code."""
    test = "assert add(2, 3) == 5\n"
    if gated:
        test = gated_test(*gated) + test
    return {"task_id": task_id, "language": "python", "priority": priority,
            "prompt": "Return the sum of a and b (%s)." % task_id,
            "stub": "def add(a, b):\n", "entry_point": "add", "test": test,
            "resources": {"timeout_s": GATE_S + 60}}


def write_tasks(name, tasks):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        for t in tasks:
            f.write(json.dumps(t) + "\n")
    return path


def eval_cmd(db, tasks, results, attempts):
    # rlimits: the gated tests read and write files of the work directory; the namespace
    # sandbox would hide them.
    return [GRYPHGEN, "eval", "--generator", "openai", "--jobs", "1", "--isolation", "rlimits",
            "--db", db, "--results", results, "--max-attempts", str(attempts), "--quiet", tasks]


def start_and_kill(cmd, e, model, requests, ready):
    """Runs cmd until the server got `requests` requests for model and ready() holds (the
    attempt to interrupt is in flight), then kills it (-9)."""
    p = subprocess.Popen(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: p.poll() is not None or (asked(model) >= requests and ready()))
    alive = p.poll() is None
    p.send_signal(signal.SIGKILL)
    out, err = p.communicate(timeout=GUARD_S)
    no_sanitizer_report(err, "first run")
    check(alive and asked(model) == requests and ready(),
          "the first run was killed while attempt %d ran" % requests,
          "exit %s, asked %d, ready %s: %s" % (p.returncode, asked(model), ready(), err))


def read_results(path):
    with open(path) as f:
        return {r["task_id"]: r for r in (json.loads(l) for l in f if l.strip())}


def db_value(db, sql):
    """The first column of sql's first row, on the database opened read-only; None while it
    does not exist or cannot be read."""
    rows = db_rows(db, sql)
    return rows[0][0] if rows else None


def part_journal():
    # 1. A resumed eval reuses the journal kept in the orchestrator's database.
    model = "ok:resume"
    db = os.path.join(work, "journal.db")
    one = gate("one")
    tasks = write_tasks("one.jsonl", [task("resume/one", gated=one)])
    res = os.path.join(work, "one.results")
    start_and_kill(eval_cmd(db, tasks, res, 1), env(model), model, 1,
                   lambda: starts(one[0]) == 1)
    open_gate(one[1])
    p = subprocess.run(eval_cmd(db, tasks, res, 1), env=env(model), capture_output=True,
                       text=True, timeout=GUARD_S)
    no_sanitizer_report(p.stderr, "resumed run")
    rows = read_results(res) if os.path.exists(res) else {}
    check(p.returncode == 0 and rows.get("resume/one", {}).get("status") == "passed",
          "the resumed run passes the task", p.stdout + p.stderr)
    check(asked(model) == 1, "the resumed run did not ask the server again",
          "asked %d times" % asked(model))
    check(starts(one[0]) == 2, "the resumed run ran the killed attempt's test again",
          starts(one[0]))
    rows = db_value(db, "select count(*) from llm_journal")
    check(rows == 1, "the journal is in the orchestrator's database", rows)
    with open(db, "rb") as f:
        check(KEY.encode() not in f.read(), "the key is not in the database")

    # 3. A grid worker keeps a journal file of its own (--journal PATH).
    wj = os.path.join(work, "worker-journal.db")
    p = subprocess.Popen([GRYPHGEN, "worker", "--connect", "tcp://127.0.0.1:1", "--insecure",
                          "--generator", "openai", "--journal", wj],
                         env=env("ok:worker"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    wait_until(lambda: os.path.exists(wj) or p.poll() is not None)
    check(os.path.exists(wj), "worker --journal creates its journal")
    p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=GUARD_S)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    no_sanitizer_report(err, "worker")
    p = subprocess.run([GRYPHGEN, "worker", "--connect", "tcp://127.0.0.1:1", "--insecure",
                        "--generator", "openai", "--journal", "/nonexistent/dir/j.db"],
                       env=env("ok:worker"), capture_output=True, text=True, timeout=GUARD_S)
    check(p.returncode != 0 and "/nonexistent/dir/j.db" in p.stderr,
          "worker --journal with a bad path fails and names it", p.stderr)


def part_budget():
    # 2. The run's token budget counts the tokens spent before the kill. Each answer costs
    # 18 tokens and is wrong; the budget is 30. Two slots: task a (plain test) makes two
    # attempts (36 tokens: spent) while task b's first attempt runs a test that waits; the
    # run is killed once a's attempts are in the database. The resumed run must see the
    # budget spent and end b without asking the model or running anything; were the tokens
    # reset, b would be tried again.
    model = "wrong:budget"
    db = os.path.join(work, "budget.db")
    b_gate = gate("b")
    tasks = write_tasks("budget.jsonl", [task("budget/a", 10),
                                         task("budget/b", 0, gated=b_gate)])
    res = os.path.join(work, "budget.results")
    e = env(model, GRYPHGEN_MAX_TOKENS="30")
    cmd = eval_cmd(db, tasks, res, 3)
    cmd[cmd.index("--jobs") + 1] = "2"
    a_attempts = ("SELECT count(*) FROM attempts a JOIN tasks t ON t.seq = a.task_seq "
                  "WHERE t.task_id = 'budget/a'")
    start_and_kill(cmd, e, model, 3,
                   lambda: db_value(db, a_attempts) == 2 and starts(b_gate[0]) == 1)
    open_gate(b_gate[1])  # were b run again, its test would not wait
    p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=GUARD_S)
    no_sanitizer_report(p.stderr, "resumed budget run")
    rows = read_results(res) if os.path.exists(res) else {}
    b = rows.get("budget/b", {})
    check(asked(model) == 3, "the resumed run asks the model nothing (the budget was spent "
          "before the kill)", "asked %d times; %s" % (asked(model), str(rows)[:2000]))
    check(b.get("status") == "failed" and "run token budget" in (b.get("reason") or "") and
          b.get("attempts") == 0, "the unfinished task ends for the run's budget",
          str(b)[:2000])
    check(starts(b_gate[0]) == 1, "the resumed run does not run b's test again",
          starts(b_gate[0]))
    check(db_value(db, "select sum(n) from llm_arms") not in (None, 0),
          "the bandit learnt from the judged answers", db_rows(db, "select * from llm_arms"))


try:
    part_budget() if PART == "budget" else part_journal()
finally:
    for name in ("one", "b"):
        open_gate(gate(name)[1])  # a test left waiting by a killed run ends
    server.kill()
    server.wait()
    shutil.rmtree(work, ignore_errors=True)

finish()
