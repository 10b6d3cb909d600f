"""test_workspace.py - a workspace task through the grid (docs/tasks.md, "Workspace tasks"):
`gryphgen submit --connect` resolves the task on the submitter's side (a local repository is
packed into it), the source repository is then deleted, and only then does a worker join:
it builds the base from the shipped pack, runs the wrong and then the right diff, and the
result carries the patch and the base commit. A repository given by URL (git://, served by
`git daemon` on loopback) is not packed: the worker fetches it; an unpacked file:// one is
refused by the hub. A task whose repository is missing is refused by the submitter
naming the field, and the other tasks of its batch go."""

import json
import os
import shutil
import socket
import subprocess

from gridtest import (GRYPHGEN, check, env, finish, free_port, gg, nodes, start, status,
                      require, stop_all, tmpdir, up, wait_until)

work = tmpdir()
ep = "tcp://127.0.0.1:%d" % free_port()
os.environ["GRYPHGEN_WS_ROOT"] = os.path.join(work, "wsroot")

CALC = "def add(a, b):\n    return a - b\n"
TESTS = ("import unittest\nfrom calc import add\n\n\nclass T(unittest.TestCase):\n"
         "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n")
WRONG = ("--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n"
         "-    return a - b\n+    return a * b\n")
RIGHT = WRONG.replace("a * b", "a + b")


def git(repo, *args):
    e = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t",
             GIT_COMMITTER_EMAIL="t@x")
    return subprocess.run(["git"] + list(args), cwd=repo, env=e, check=True,
                          capture_output=True, text=True).stdout.strip()


try:
    repo = os.path.join(work, "repo")
    os.makedirs(repo)
    with open(os.path.join(repo, "calc.py"), "w") as f:
        f.write(CALC)
    with open(os.path.join(repo, "test_calc.py"), "w") as f:
        f.write(TESTS)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "calc")
    head = git(repo, "rev-parse", "HEAD")

    serve = start(["serve", "--insecure", "--bind", ep, "--db", os.path.join(work, "grid.db")],
                  os.path.join(work, "serve.log"))
    up("the hub answers", lambda: status(ep) is not None, serve)

    tasks = os.path.join(work, "tasks.jsonl")
    with open(tasks, "w") as f:
        f.write(json.dumps({"task_id": "grid-ws", "language": "python", "prompt": "Fix add().",
                            "workspace": {"repo": repo, "ref": "main"},
                            "test_command": ["python3", "-m", "unittest", "-v"],
                            "candidates": [WRONG, RIGHT]}) + "\n")
    sub = subprocess.Popen([GRYPHGEN, "submit", "--insecure", "--connect", ep, "--wait", tasks],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env=env())
    check(wait_until(lambda: sum((status(ep) or {}).get(k, 0) for k in ("queued", "running")) >= 1
                     or sub.poll() is not None),
          "the task is queued at the hub", status(ep))
    # The source goes away: only the pack the task carries can build the base now.
    shutil.rmtree(repo)
    worker = start(["worker", "--insecure", "--connect", ep, "--slots", "1"],
                   os.path.join(work, "w.log"))
    up("the worker joins", lambda: nodes(ep) == 1, serve, worker)
    out, err = sub.communicate(timeout=600)
    lines = out.splitlines()
    r = json.loads(lines[1]) if len(lines) > 1 else {}
    check(sub.returncode == 0 and lines and lines[0] == "grid-ws", "submit --wait prints the id",
          out + err)
    check(r.get("status") == "passed" and r.get("passed_attempt") == 2,
          "the remote worker passes the task at the second diff", r)
    check(r.get("base_commit") == head and "+    return a + b" in (r.get("patch") or ""),
          "the result carries the patch and the base commit", r)
    hist = r.get("history") or []
    check(len(hist) == 2 and "test_add" in (hist[0].get("reason") or ""),
          "the failing test is named in the first attempt's reason", hist[:1])

    # A repository given by URL is not packed: the worker fetches it at the pinned commit.
    repo2 = os.path.join(work, "repo2")
    os.makedirs(repo2)
    with open(os.path.join(repo2, "calc.py"), "w") as f:
        f.write(CALC)
    with open(os.path.join(repo2, "test_calc.py"), "w") as f:
        f.write(TESTS)
    git(repo2, "init", "-q", "-b", "main")
    git(repo2, "add", ".")
    git(repo2, "commit", "-q", "-m", "calc")
    head2 = git(repo2, "rev-parse", "HEAD")
    # Served by git's own daemon on loopback (git://), as a network URL would be.
    gport = free_port()
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--listen=127.0.0.1",
                               "--port=%d" % gport, "--base-path=" + work, "--export-all",
                               work], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listening():
        try:
            socket.create_connection(("127.0.0.1", gport), timeout=1).close()
            return True
        except OSError:
            return False

    try:
        require(wait_until(lambda: listening() or daemon.poll() is not None) and
                daemon.poll() is None, "git daemon listens", daemon.returncode)
        url_task = os.path.join(work, "url.jsonl")
        with open(url_task, "w") as f:
            f.write(json.dumps({"task_id": "grid-ws-url", "language": "python",
                                "workspace": {"repo": "git://127.0.0.1:%d/repo2" % gport,
                                              "ref": "main"},
                                "test_command": ["python3", "-m", "unittest"],
                                "candidates": [RIGHT]}) + "\n")
        p = gg(["submit", "--insecure", "--connect", ep, "--wait", url_task], timeout=600)
        lines = p.stdout.splitlines()
        r = json.loads(lines[1]) if len(lines) > 1 else {}
        check(r.get("status") == "passed" and r.get("base_commit") == head2,
              "a repository URL: the worker fetches it at the pinned commit",
              p.stdout + p.stderr)
    finally:
        daemon.kill()
        daemon.wait()

    # A file:// URL is a path on the submitter's machine: the hub refuses it unpacked (a
    # worker never reads its own files on a submitter's behalf).
    ftask = os.path.join(work, "file.jsonl")
    with open(ftask, "w") as f:
        f.write(json.dumps({"task_id": "grid-ws-file", "language": "python",
                            "workspace": {"repo": "file://" + repo2, "ref": "main"},
                            "test_command": "true", "candidates": [RIGHT]}) + "\n")
    p = gg(["submit", "--insecure", "--connect", ep, ftask])
    check(p.returncode != 0 and "workspace.repo" in p.stderr and "workspace.pack" in p.stderr,
          "an unpacked file:// repository is refused by the hub, naming the field",
          p.stdout + p.stderr)

    # eval --connect submits one task at a time (gg_client_submit): resolved the same way.
    ev = os.path.join(work, "eval.jsonl")
    with open(ev, "w") as f:
        f.write(json.dumps({"task_id": "grid-ws-eval", "language": "python",
                            "workspace": {"repo": repo2},
                            "test_command": ["python3", "-m", "unittest"],
                            "candidates": [WRONG, RIGHT]}) + "\n")
    evres = os.path.join(work, "eval.results")
    p = gg(["eval", "--insecure", "--connect", ep, "--results", evres, ev], timeout=600)
    erows = [json.loads(x) for x in open(evres)] if os.path.exists(evres) else [{}]
    check(p.returncode == 0 and erows[0].get("status") == "passed" and
          erows[0].get("base_commit") == head2 and erows[0].get("patch"),
          "eval --connect: a workspace task passes on the remote worker", p.stdout + p.stderr)

    # A missing repository: refused by the submitter, naming the field; the other tasks of
    # the same batch are submitted (the batch's indices stay right).
    bad = os.path.join(work, "bad.jsonl")
    with open(bad, "w") as f:
        f.write(json.dumps({"task_id": "grid-plain", "language": "python",
                            "test": "assert f() == 1",
                            "candidates": ["def f():\n    return 1\n"]}) + "\n")
        f.write(json.dumps({"task_id": "grid-ws-missing", "language": "python",
                            "workspace": {"repo": os.path.join(work, "nowhere")},
                            "test_command": "true"}) + "\n")
        f.write(json.dumps({"task_id": "grid-plain-2", "language": "python",
                            "test": "assert f() == 2",
                            "candidates": ["def f():\n    return 2\n"]}) + "\n")
    p = gg(["submit", "--insecure", "--connect", ep, bad])
    check(p.returncode != 0 and "task 2 of the batch" in p.stderr and
          "workspace.repo" in p.stderr,
          "a missing repository is refused naming workspace.repo and its place in the batch",
          p.stdout + p.stderr)
    check(p.stdout.split() == ["grid-plain", "grid-plain-2"],
          "the batch's other tasks are submitted", p.stdout)
finally:
    stop_all()
    for d, dirs, _ in os.walk(work):  # the cache's bases are read-only
        for name in dirs:
            try:
                os.chmod(os.path.join(d, name), 0o755)
            except OSError:
                pass
    shutil.rmtree(work, ignore_errors=True)
finish()
