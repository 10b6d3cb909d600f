"""Workspace tasks through the binding (docs/tasks.md, "Workspace tasks"): a git repository
made by the test with a failing test suite, a wrong diff then a right one; the result carries
the passing patch and the base commit, the source stays as it was; a missing repository is
refused at submission with the field named."""

import os
import subprocess

import pytest

CALC = "def add(a, b):\n    return a - b\n"
TESTS = ("import unittest\nfrom calc import add\n\n\nclass T(unittest.TestCase):\n"
         "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n")
WRONG = "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a * b\n"
RIGHT = "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"


def _git(repo, *args):
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@x")
    return subprocess.run(["git"] + list(args), cwd=repo, env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    monkeypatch.setenv("GRYPHGEN_WS_ROOT", str(tmp_path / "wsroot"))
    r = tmp_path / "repo"
    r.mkdir()
    (r / "calc.py").write_text(CALC)
    (r / "test_calc.py").write_text(TESTS)
    _git(r, "init", "-q", "-b", "main")
    _git(r, "add", ".")
    _git(r, "commit", "-q", "-m", "calc")
    yield r
    for d, dirs, _ in os.walk(tmp_path):  # the cache's bases are read-only
        for name in dirs:
            os.chmod(os.path.join(d, name), 0o755)


def test_workspace_task_passes_with_its_patch(gg, orch, repo):
    head = _git(repo, "rev-parse", "HEAD")
    tid = orch.submit({"task_id": "py/ws", "language": "python", "prompt": "Fix add().",
                       "workspace": {"repo": str(repo), "ref": "main"},
                       "test_command": ["python3", "-m", "unittest", "-v"],
                       "candidates": [WRONG, RIGHT]})
    r = orch.wait(tid, 300)
    assert r["status"] == "passed", r
    assert r["passed_attempt"] == 2
    assert "test_add" in r["history"][0]["reason"]
    assert r["base_commit"] == head
    assert "+    return a + b" in r["patch"]
    assert (repo / "calc.py").read_text() == CALC
    assert _git(repo, "status", "--porcelain") == ""


def test_missing_repository_is_refused_naming_the_field(gg, orch, tmp_path):
    with pytest.raises(gg.NotFound) as e:
        orch.submit({"task_id": "py/ws-missing", "language": "python",
                     "workspace": {"repo": str(tmp_path / "nowhere")},
                     "test_command": "true"})
    assert "workspace.repo" in e.value.message
