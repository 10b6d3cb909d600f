"""test_workspace.py - workspace tasks through `gryphgen eval` (docs/tasks.md, "Workspace
tasks"): a git repository made here with a failing Python test suite, and replay candidates
that are a diff that does not apply, a diff that applies but fails the tests (the reason, which
is the next attempt's feedback, names the failing test) and a correct diff; a directory
workspace answered with whole files; an inline workspace with a shell test; and bad tasks
(a missing repository, a missing ref, no test command, a test command that does not exist, a
diff that reaches outside with '..') that each end with a reason naming the field while the
rest of the set runs. The source repository's HEAD and working tree are never touched, and
the passing patch applies to it with `git apply --check`. Then `gryphgen run` on a workspace
task, the shipped example (examples/workspace_tasks.jsonl) with replay and reference, and
kill -9 in the middle of a workspace attempt followed by a resumed run."""

import json
import os
import shutil
import signal
import subprocess

from clitest import (GATE_S, GRYPHGEN, check, ended_tasks, env, finish, gg, open_gate,
                     read_jsonl, starts, summary, tmpdir, wait_until)

work = tmpdir()
os.environ["GRYPHGEN_WS_ROOT"] = os.path.join(work, "wsroot")


def rmtree(top):
    """Removes a tree that holds read-only directories (the cache's bases)."""
    for d, dirs, _ in os.walk(top):
        for name in dirs:
            try:
                os.chmod(os.path.join(d, name), 0o755)
            except OSError:
                pass
    shutil.rmtree(top, ignore_errors=True)


def git(*args, cwd=None):
    p = subprocess.run(["git"] + list(args), cwd=cwd, capture_output=True, text=True,
                       env=dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x",
                                GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@x"))
    if p.returncode != 0:
        raise RuntimeError("git %s: %s" % (" ".join(args), p.stderr))
    return p.stdout.strip()


CALC = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
TESTS = ("import unittest\n\nfrom calc import add, mul\n\n\n"
         "class TestCalc(unittest.TestCase):\n"
         "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n"
         "    def test_mul(self):\n        self.assertEqual(mul(2, 3), 6)\n\n\n"
         "if __name__ == '__main__':\n    unittest.main()\n")

WRONG_CONTEXT = ("--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(x, y):\n"
                 "-    return x - y\n+    return x + y\n")
WRONG_FIX = ("--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n"
             "-    return a - b\n+    return a * b\n")
RIGHT_FIX = ("Here is the fix:\n\n```diff\ndiff --git a/calc.py b/calc.py\n--- a/calc.py\n"
             "+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n"
             "+    return a + b\n```\n")
HOSTILE = ("--- a/../escaped.txt\n+++ b/../escaped.txt\n@@ -0,0 +1 @@\n+owned\n")

UNITTEST = ["python3", "-m", "unittest", "-v"]

try:
    repo = os.path.join(work, "repo")
    os.makedirs(repo)
    with open(os.path.join(repo, "calc.py"), "w") as f:
        f.write(CALC)
    with open(os.path.join(repo, "test_calc.py"), "w") as f:
        f.write(TESTS)
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "calc with a bug", cwd=repo)
    head = git("rev-parse", "HEAD", cwd=repo)
    # An uncommitted change in the working tree: the task's base is the commit, not this.
    with open(os.path.join(repo, "scratch.txt"), "w") as f:
        f.write("not committed\n")
    status_before = git("status", "--porcelain", cwd=repo)

    plain = os.path.join(work, "calcdir")
    os.makedirs(plain)
    for name, text in (("calc.py", CALC), ("test_calc.py", TESTS)):
        with open(os.path.join(plain, name), "w") as f:
            f.write(text)

    tasks = [
        {"task_id": "ws-repo", "language": "python", "prompt": "Fix add().",
         "workspace": {"repo": repo, "ref": "main"}, "test_command": UNITTEST,
         "candidates": [WRONG_CONTEXT, WRONG_FIX, RIGHT_FIX]},
        {"task_id": "ws-dir", "language": "python", "prompt": "Fix add().",
         "workspace": {"dir": plain}, "test_command": "python3 -m unittest",
         "candidates": [json.dumps({"files": {"calc.py": CALC.replace("a - b", "a + b")}})]},
        {"task_id": "ws-files", "language": "python", "prompt": "Print 2.",
         "workspace": {"files": {"f.sh": "echo 1\n",
                                 "test.sh": "[ \"$(sh f.sh)\" = 2 ] || "
                                            "{ echo 'not ok 1 - f prints 2'; exit 1; }\n"}},
         "test_command": ["sh", "test.sh"],
         "candidates": ["--- a/f.sh\n+++ b/f.sh\n@@ -1 +1 @@\n-echo 3\n+echo 2\n",
                        "--- a/f.sh\n+++ b/f.sh\n@@ -1 +1 @@\n-echo 1\n+echo 9\n",
                        "--- a/f.sh\n+++ b/f.sh\n@@ -1 +1 @@\n-echo 1\n+echo 2\n"]},
        {"task_id": "ws-no-repo", "language": "python",
         "workspace": {"repo": os.path.join(work, "nowhere")}, "test_command": UNITTEST,
         "candidates": [RIGHT_FIX]},
        {"task_id": "ws-no-ref", "language": "python",
         "workspace": {"repo": repo, "ref": "no-such-branch"}, "test_command": UNITTEST,
         "candidates": [RIGHT_FIX]},
        {"task_id": "ws-no-test", "language": "python", "workspace": {"repo": repo},
         "candidates": [RIGHT_FIX]},
        {"task_id": "ws-bad-cmd", "language": "python", "workspace": {"repo": repo},
         "test_command": ["gryphgen-no-such-program"], "candidates": [RIGHT_FIX]},
        {"task_id": "ws-hostile", "language": "python", "workspace": {"repo": repo},
         "test_command": UNITTEST, "candidates": [HOSTILE]},
        {"task_id": "plain", "language": "python", "stub": "def f():\n", "entry_point": "f",
         "test": "def check(c):\n    assert c() == 1\n", "candidates": ["    return 1\n"]},
    ]
    path = os.path.join(work, "ws.jsonl")
    with open(path, "w") as f:
        for t in tasks:
            f.write(json.dumps(t) + "\n")
    res = os.path.join(work, "results.jsonl")
    db = os.path.join(work, "run.db")
    p = gg(["eval", "--jobs", "2", "--db", db, "--results", res, path], timeout=600)
    s = summary(p.stdout)
    out = p.stdout + p.stderr
    rows = {r.get("task_id"): r for r in read_jsonl(res)} if os.path.exists(res) else {}
    check(p.returncode == 2 and s.get("bad lines") == 3,
          "the set runs; three lines are refused at submission (exit 2)", out)

    r = rows.get("ws-repo", {})
    hist = r.get("history") or []
    check(r.get("status") == "passed" and r.get("passed_attempt") == 3,
          "repo workspace: passes at the third candidate", r)
    check(len(hist) == 3 and "patch does not apply" in (hist[0].get("reason") or "") and
          hist[0].get("execution") is None,
          "repo workspace: a diff that does not apply fails the attempt and runs nothing",
          hist[:1])
    check(len(hist) == 3 and "test_add" in (hist[1].get("reason") or "") and
          "test_mul" not in (hist[1].get("reason") or ""),
          "repo workspace: the failing test is named in the reason (the next feedback)",
          hist[1:2])
    check(len(hist) == 3 and "a * b" in (hist[1].get("patch") or ""),
          "repo workspace: a failing attempt's record keeps its patch", hist[1:2])
    check(r.get("base_commit") == head, "repo workspace: base_commit is the ref's commit",
          (r.get("base_commit"), head))
    patch = r.get("patch") or ""
    check("+    return a + b" in patch and "diff --git a/calc.py b/calc.py" in patch,
          "repo workspace: the result's patch is the passing diff", patch)
    pf = os.path.join(work, "result.patch")
    with open(pf, "w") as f:
        f.write(patch)
    ap = subprocess.run(["git", "apply", "--check", pf], cwd=repo, capture_output=True,
                        text=True)
    check(ap.returncode == 0, "repo workspace: git apply --check accepts the patch", ap.stderr)
    check(git("rev-parse", "HEAD", cwd=repo) == head and
          git("status", "--porcelain", cwd=repo) == status_before,
          "the source repository's HEAD and working tree are untouched",
          git("status", "--porcelain", cwd=repo))
    with open(os.path.join(repo, "calc.py")) as f:
        check(f.read() == CALC, "the source's calc.py is unchanged")

    r = rows.get("ws-dir", {})
    check(r.get("status") == "passed" and len(r.get("base_commit") or "") == 40 and
          "a + b" in (r.get("patch") or ""),
          "dir workspace: whole files pass; patch and base_commit in the result", r)
    with open(os.path.join(plain, "calc.py")) as f:
        check(f.read() == CALC, "dir workspace: the source directory is unchanged")

    r = rows.get("ws-files", {})
    hist = r.get("history") or []
    check(r.get("status") == "passed" and r.get("passed_attempt") == 3,
          "inline workspace: passes at the third candidate", r)
    check(len(hist) == 3 and "f prints 2" in (hist[1].get("reason") or ""),
          "inline workspace: a TAP 'not ok' line names the failing test", hist[1:2])

    for tid, field in (("ws-no-repo", "workspace.repo"), ("ws-no-ref", "workspace.ref"),
                       ("ws-no-test", "test_command")):
        r = rows.get(tid, {})
        check(r.get("status") == "error" and field in (r.get("reason") or ""),
              "%s: refused, naming '%s'" % (tid, field), r)
    r = rows.get("ws-bad-cmd", {})
    check(r.get("status") == "error" and "test_command" in (r.get("reason") or ""),
          "a test command that does not exist: error naming 'test_command'", r)
    r = rows.get("ws-hostile", {})
    check(r.get("status") == "failed" and ".." in (r.get("reason") or "") and
          "patch does not apply" in (r.get("reason") or ""),
          "a diff reaching outside with '..' is refused", r)
    check(not os.path.exists(os.path.join(work, "escaped.txt")) and
          not any(os.path.exists(os.path.join(d, "escaped.txt"))
                  for d, _, _ in os.walk(work)),
          "nothing is written outside the attempt's copy")
    check(rows.get("plain", {}).get("status") == "passed", "a plain task in the set still runs",
          rows.get("plain"))
    attempts_dir = os.path.join(work, "wsroot", "attempts")
    check(os.path.isdir(attempts_dir) and not [n for n in os.listdir(attempts_dir)
                                               if n.startswith("attempt-")],
          "every attempt's copy is removed", os.listdir(attempts_dir)
          if os.path.isdir(attempts_dir) else None)

    # setup_command: runs once per base (the count file is outside the copy, so this set
    # runs at rlimits), and what it made is in every attempt's copy; one that fails or does
    # not exist ends its task naming the field. A test writing into its copy works.
    count = os.path.join(work, "setup.count")
    check_sh = ("[ -f built.txt ] && echo more > built.txt && echo new > new.txt && "
                "[ \"$(cat v.txt)\" = 2 ] || { echo 'not ok 1 - v is 2'; exit 1; }")
    setup_tasks = [
        {"task_id": "ws-setup", "language": "python",
         "workspace": {"files": {"v.txt": "0\n"}}, "test_command": check_sh,
         "setup_command": "echo run >> %s; echo ok > built.txt" % count,
         "candidates": [json.dumps({"files": {"v.txt": "1\n"}}),
                        json.dumps({"files": {"v.txt": "3\n"}}),
                        json.dumps({"files": {"v.txt": "2\n"}})]},
        {"task_id": "ws-setup-fails", "language": "python",
         "workspace": {"files": {"v.txt": "0\n"}}, "test_command": "true",
         "setup_command": "echo broken >&2; exit 3", "candidates": ["x"]},
        {"task_id": "ws-setup-missing", "language": "python",
         "workspace": {"files": {"v.txt": "0\n"}}, "test_command": "true",
         "setup_command": ["gryphgen-no-such-setup"], "candidates": ["x"]},
        {"task_id": "ws-not-a-diff", "language": "python",
         "workspace": {"files": {"v.txt": "0\n"}}, "test_command": "true",
         "candidates": ["I would change v.txt, but here is no diff."]},
    ]
    # Failing tests named from the output of common runners.
    runners = {
        "pytest": ("FAILED tests/test_calc.py::test_add - assert 6 == 5\n"
                   "1 failed, 3 passed in 0.02s\n", "tests/test_calc.py::test_add"),
        "go": ("=== RUN   TestAdd\n--- FAIL: TestAdd (0.00s)\nFAIL\n", "TestAdd"),
        "cargo": ("running 2 tests\ntest calc::adds ... FAILED\ntest calc::muls ... ok\n",
                  "calc::adds"),
        "junit": ("Tests run: 4, Failures: 1, Errors: 0, Skipped: 0\n",
                  "Tests run: 4, Failures: 1"),
        "node": ("AssertionError [ERR_ASSERTION]: 6 == 5\n", "AssertionError [ERR_ASSERTION]"),
        "plain": ("all went wrong here\n", "all went wrong here"),
    }
    for name, (output, _) in runners.items():
        setup_tasks.append({"task_id": "ws-runner-" + name, "language": "python",
                            "workspace": {"files": {"out.txt": output}},
                            "test_command": "cat out.txt; exit 1",
                            "candidates": [json.dumps({"files": {"x": "1"}})]})
    spath = os.path.join(work, "setup.jsonl")
    with open(spath, "w") as f:
        for t in setup_tasks:
            f.write(json.dumps(t) + "\n")
    sres = os.path.join(work, "setup.results")
    p = gg(["eval", "--isolation", "rlimits", "--results", sres, spath], timeout=300)
    srows = {r.get("task_id"): r for r in read_jsonl(sres)} if os.path.exists(sres) else {}
    r = srows.get("ws-setup", {})
    check(r.get("status") == "passed" and r.get("passed_attempt") == 3,
          "setup_command: its result is in every attempt's copy", r)
    with open(count) if os.path.exists(count) else open(os.devnull) as f:
        runs = f.read().split()
    check(runs == ["run"], "setup_command ran once for three attempts", runs)
    for tid in ("ws-setup-fails", "ws-setup-missing"):
        r = srows.get(tid, {})
        check(r.get("status") == "error" and "setup_command" in (r.get("reason") or ""),
              "%s: error naming 'setup_command'" % tid, r)
    check("broken" in (srows.get("ws-setup-fails", {}).get("reason") or ""),
          "a failing setup's output is in the reason", srows.get("ws-setup-fails"))
    for name, (_, want) in runners.items():
        r = srows.get("ws-runner-" + name, {})
        check(r.get("status") == "failed" and want in (r.get("reason") or "") and
              "test command exited with 1" in (r.get("reason") or ""),
              "%s output: the reason names what failed" % name, r.get("reason"))
    r = srows.get("ws-not-a-diff", {})
    check(r.get("status") == "failed" and "patch does not apply" in (r.get("reason") or ""),
          "an answer that is not a diff fails its attempt", r)

    # The same writing test at the default isolation (the namespace sandbox where this host
    # has it): the job can write in its copy.
    wpath = os.path.join(work, "write.jsonl")
    with open(wpath, "w") as f:
        f.write(json.dumps({"task_id": "ws-write", "language": "python",
                            "workspace": {"files": {"v.txt": "0\n", "d/keep": ""}},
                            "test_command": "echo x > v.txt && echo y > d/new && "
                                            "mkdir -p e && echo z > e/f && cat n/m.txt",
                            "candidates": ["--- /dev/null\n+++ b/n/m.txt\n@@ -0,0 +1 @@\n"
                                           "+made by the answer\n"]}) + "\n")
    p = gg(["eval", "--results", os.path.join(work, "write.results"), wpath], timeout=300)
    wrows = read_jsonl(os.path.join(work, "write.results")) \
        if os.path.exists(os.path.join(work, "write.results")) else [{}]
    check(wrows[0].get("status") == "passed",
          "a test command writes in its copy (and reads what the answer made)", wrows[0])

    # A task that asks for the namespace sandbox, on a root host, with link copies asked for
    # (GRYPHGEN_WS_COPY=link; the default there is an overlay): its copy is hard links to
    # the read-only base (the job runs as uid 65534 and cannot write them); the answer
    # replaces the file it changes, the job can add files, and the next attempt's copy
    # still sees the base as it was.
    lpath = os.path.join(work, "link.jsonl")
    link_test = ("[ $(stat -c %h keep.txt) -ge 2 ] && echo new > new.txt && "
                 "[ \"$(cat a.txt)\" = 2 ] || { echo 'not ok 1 - a is 2'; exit 1; }")
    with open(lpath, "w") as f:
        f.write(json.dumps({"task_id": "ws-link", "language": "python",
                            "isolation": "namespaces",
                            "workspace": {"files": {"a.txt": "1\n", "keep.txt": "k\n"}},
                            "test_command": link_test,
                            "candidates": ["--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-1\n+3\n",
                                           "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-1\n+2\n"]
                            }) + "\n")
    lres = os.path.join(work, "link.results")
    asked = os.environ.get("GRYPHGEN_WS_COPY")
    os.environ["GRYPHGEN_WS_COPY"] = "link"
    try:
        p = gg(["eval", "--results", lres, lpath], timeout=300)
    finally:
        os.environ.pop("GRYPHGEN_WS_COPY")
        if asked is not None:
            os.environ["GRYPHGEN_WS_COPY"] = asked
    lrow = (read_jsonl(lres) if os.path.exists(lres) else [{}])[0]
    if os.geteuid() != 0 or "namespaces" in (lrow.get("reason") or ""):
        print("note: no namespace sandbox as root here; the link copy is not checked")
    else:
        check(lrow.get("status") == "passed" and lrow.get("passed_attempt") == 2 and
              "+2" in (lrow.get("patch") or ""),
              "a link copy: the answer replaces its file, the base stays as it was", lrow)

    # The machinery failing (a root that cannot be made: a file is in its way) is an
    # infrastructure fault: retried, then the task errors, with no failed attempt counted.
    blocker = os.path.join(work, "blocker")
    with open(blocker, "w") as f:
        f.write("a file, not a directory\n")
    ipath = os.path.join(work, "infra.jsonl")
    with open(ipath, "w") as f:
        f.write(json.dumps(dict(tasks[2], task_id="ws-infra")) + "\n")
    ires = os.path.join(work, "infra.results")
    p = subprocess.run([GRYPHGEN, "eval", "--results", ires, ipath], capture_output=True,
                       text=True, timeout=300,
                       env=env(GRYPHGEN_WS_ROOT=os.path.join(blocker, "root")))
    irows = read_jsonl(ires) if os.path.exists(ires) else [{}]
    check(irows[0].get("status") == "error" and irows[0].get("attempts") == 0 and
          (irows[0].get("reason") or "").startswith("workspace:"),
          "a cache that cannot be made: an infrastructure error, no attempt counted",
          irows[0])

    # The shipped example, run from the source root as examples/README.md says.
    from clitest import SOURCE_ROOT
    ex = os.path.join("examples", "workspace_tasks.jsonl")
    exres = os.path.join(work, "example.jsonl")
    p = gg(["eval", "--results", exres, ex], cwd=SOURCE_ROOT, timeout=300)
    s = summary(p.stdout)
    exrows = read_jsonl(exres) if os.path.exists(exres) else []
    check(p.returncode == 0 and s.get("passed after repair") == 2 and
          all(r.get("patch") and len(r.get("base_commit") or "") == 40 for r in exrows),
          "the example: both tasks pass after repair, with patch and base_commit",
          p.stdout + p.stderr)
    check(any("test_add" in (r["history"][0].get("reason") or "") for r in exrows),
          "the example: the first attempt's reason names test_add", exrows)
    p = gg(["eval", "--generator", "reference", ex], cwd=SOURCE_ROOT, timeout=300)
    check(p.returncode == 0 and summary(p.stdout).get("passed at first attempt") == 2,
          "the example with --generator reference: both pass at once", p.stdout + p.stderr)

    # What a generator is given: a command generator saves its request and answers with
    # the fix. The task comes without its pack, the request lists the files, and the
    # context holds the base's most relevant chunk (calc.py, where add() is).
    saved = os.path.join(work, "request.json")
    gen = os.path.join(work, "gen.py")
    with open(gen, "w") as f:
        f.write("import json, sys\nreq = json.load(sys.stdin)\n"
                "json.dump(req, open(%r, 'w'))\nsys.stdout.write(%r)\n" % (saved, RIGHT_FIX))
    gpath = os.path.join(work, "gen.jsonl")
    with open(gpath, "w") as f:
        f.write(json.dumps(dict(tasks[0], task_id="ws-gen", prompt="Fix add in calc.py so "
                                "that add returns the sum.", candidates=[])) + "\n")
    p = gg(["eval", "--generator", "command:/usr/bin/python3 " + gen, gpath], timeout=300)
    try:
        with open(saved) as f:
            req = json.load(f)
    except (OSError, ValueError):
        req = {}
    check(p.returncode == 0 and summary(p.stdout).get("passed at first attempt") == 1,
          "a command generator's diff passes", p.stdout + p.stderr)
    rtask = req.get("task") or {}
    check("pack" not in (rtask.get("workspace") or {}) and
          (rtask.get("workspace") or {}).get("commit") == head and
          rtask.get("test_command") == UNITTEST,
          "the generator's task: the workspace without its pack, and the test command",
          rtask.get("workspace"))
    check((req.get("workspace") or {}).get("files") == ["calc.py", "test_calc.py"],
          "the request lists the workspace's files", req.get("workspace"))
    check(any(c.get("source") == "calc.py" and "def add" in (c.get("text") or "")
              for c in req.get("context") or []),
          "the context holds the base's chunk of calc.py", req.get("context"))

    # gryphgen run: a workspace task like any other.
    one = os.path.join(work, "one.json")
    with open(one, "w") as f:
        json.dump(dict(tasks[0], task_id="ws-run"), f)
    p = gg(["run", one], timeout=300)
    try:
        got = json.loads(p.stdout)
    except ValueError:
        got = {}
    check(p.returncode == 0 and got.get("status") == "passed" and
          got.get("base_commit") == head and "a + b" in (got.get("patch") or ""),
          "gryphgen run: a workspace task passes with its patch", p.stdout + p.stderr)

    # kill -9 during a workspace attempt, then resume: the test command waits on a file.
    started = os.path.join(work, "gate.started")
    go = os.path.join(work, "gate.go")
    gate = ("echo started >> %s; i=0; while [ ! -e %s ] && [ $i -lt %d ]; do sleep 0.05; "
            "i=$((i+1)); done; python3 -m unittest" % (started, go, GATE_S * 20))
    slow = dict(tasks[0], task_id="ws-slow", test_command=gate, candidates=[RIGHT_FIX],
                resources={"timeout_s": GATE_S + 60})
    path2 = os.path.join(work, "slow.jsonl")
    with open(path2, "w") as f:
        f.write(json.dumps(slow) + "\n")
    db2 = os.path.join(work, "slow.db")
    cmd = [GRYPHGEN, "eval", "--isolation", "rlimits", "--db", db2, path2]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env(), start_new_session=True)
    ok = wait_until(lambda: proc.poll() is not None or starts(started) == 1)
    check(ok and proc.poll() is None, "kill -9: the workspace attempt is running",
          proc.poll())
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    check(ended_tasks(db2) == 0, "kill -9: the task has not ended", ended_tasks(db2))
    check([n for n in os.listdir(attempts_dir) if n.startswith("attempt-")],
          "kill -9: the attempt's copy is left behind", os.listdir(attempts_dir))
    # The branch moves before the resumed run (a change the fix no longer applies to): the
    # task stays pinned to the commit it was first submitted at.
    with open(os.path.join(repo, "calc.py"), "w") as f:
        f.write(CALC.replace("def add(a, b):\n    return a - b", "def add(x, y):\n    return x - y"))
    git("commit", "-q", "-am", "the branch moves", cwd=repo)
    check(git("rev-parse", "HEAD", cwd=repo) != head, "the branch moved")
    open_gate(go)
    p = gg(cmd[1:] + ["--results", os.path.join(work, "slow.results")], timeout=600)
    rows2 = read_jsonl(os.path.join(work, "slow.results")) \
        if os.path.exists(os.path.join(work, "slow.results")) else []
    check(p.returncode == 0 and rows2 and rows2[0].get("status") == "passed" and
          rows2[0].get("base_commit") == head and rows2[0].get("patch"),
          "the resumed run passes the task with its patch", p.stdout + p.stderr)
    check(starts(started) == 2, "the interrupted attempt ran again", starts(started))
    check(not os.listdir(attempts_dir),
          "the copy the killed run left is removed by the next run", os.listdir(attempts_dir))
finally:
    try:
        open_gate(os.path.join(work, "gate.go"))
    except OSError:
        pass
    rmtree(work)
finish()
