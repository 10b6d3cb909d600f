"""gryphgen.deliver and gryphgen.format_patch against a repository made with git, checked
with git: one commit on a new branch whose parent is the base, HEAD and the working tree
untouched, the refusals as the binding's exceptions, and a mail git am applies."""

import os
import shutil
import subprocess

import pytest

GIT = shutil.which("git")
pytestmark = pytest.mark.skipif(GIT is None, reason="the git command is not installed")


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """(repo path, base commit, patch) with a staged and an unstaged change left in it."""
    for k, v in {"HOME": str(tmp_path), "GIT_CONFIG_NOSYSTEM": "1", "GIT_OPTIONAL_LOCKS": "0",
                 "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.org",
                 "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.org"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("GIT_AUTHOR_DATE", raising=False)
    monkeypatch.delenv("GIT_COMMITTER_DATE", raising=False)
    r = tmp_path / "repo"

    def git(*args, cwd=r):
        return subprocess.run([GIT] + list(args), cwd=cwd, check=True, capture_output=True,
                              text=True).stdout.strip()

    git("init", "-q", "-b", "main", str(r), cwd=tmp_path)
    (r / "m.py").write_text("def f():\n    return 1\n")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    base = git("rev-parse", "HEAD")
    (r / "m.py").write_text("def f():\n    return 2\n")
    patch = git("diff") + "\n"
    git("checkout", "-q", "--", "m.py")
    (r / "staged.txt").write_text("staged\n")
    git("add", "staged.txt")
    (r / "m.py").write_text("def f():\n    return 'unstaged'\n")
    return r, base, patch, git


def task_and_result(repo_path, base, patch, status="passed", task_id="py/ws-1"):
    task = {"task_id": task_id, "language": "python", "prompt": "Make f return 2",
            "workspace": {"repo": str(repo_path)}, "test_command": "true"}
    result = {"task_id": task_id, "status": status, "attempts": 1, "passed_attempt": 1,
              "patch": patch, "base_commit": base}
    return task, result


def test_deliver_commits_onto_a_new_branch(gg, repo):
    r, base, patch, git = repo
    before = (git("rev-parse", "HEAD"), git("status", "--porcelain"), git("diff", "--cached"))
    task, result = task_and_result(r, base, patch)
    out = gg.deliver(task, result, author=("Bea", "bea@example.org"))
    assert out["branch"] == "refs/heads/gryphgen/py/ws-1" and out["parent"] == base
    assert git("rev-parse", "gryphgen/py/ws-1") == out["commit"]
    assert git("rev-parse", "gryphgen/py/ws-1^") == base
    assert git("show", "gryphgen/py/ws-1:m.py") == "def f():\n    return 2"
    assert git("log", "-1", "--format=%an <%ae>|%s", "gryphgen/py/ws-1") == \
        "Bea <bea@example.org>|Make f return 2"
    assert (git("rev-parse", "HEAD"), git("status", "--porcelain"),
            git("diff", "--cached")) == before

    with pytest.raises(gg.AlreadyExists, match="exists"):
        gg.deliver(task, result)
    assert git("rev-parse", "gryphgen/py/ws-1") == out["commit"]
    out2 = gg.deliver(task, result, branch="fix/other")
    assert out2["branch"] == "refs/heads/fix/other"


def test_deliver_refusals(gg, repo):
    r, base, patch, git = repo
    task, result = task_and_result(r, base, patch, status="failed")
    with pytest.raises(gg.InvalidState, match="not passed"):
        gg.deliver(task, result)
    task, result = task_and_result("https://example.org/x.git", base, patch)
    with pytest.raises(gg.InvalidInput, match="URL"):
        gg.deliver(task, result)
    task, result = task_and_result(r, base, patch.replace("return 1", "return 7"))
    with pytest.raises(gg.IOFailure, match="does not apply"):
        gg.deliver(task, result)
    with pytest.raises(gg.InvalidInput):
        gg.deliver("{nope", result)
    with pytest.raises(TypeError):
        gg.deliver(task, result, author="just a name")
    assert git("branch", "--list", "gryphgen/*") == ""


def test_format_patch_applies_with_git_am(gg, repo, tmp_path):
    r, base, patch, git = repo
    task, result = task_and_result(r, base, patch)
    text = gg.format_patch(task, result)
    assert text.startswith("From 0000000000000000000000000000000000000000 ")
    assert "Subject: [PATCH] Make f return 2\n" in text
    mail = tmp_path / "one.patch"
    mail.write_text(text)
    clone = tmp_path / "clone"
    git("clone", "-q", str(r), str(clone), cwd=tmp_path)
    git("checkout", "-q", "-b", "am", base, cwd=clone)
    git("am", "-q", str(mail), cwd=clone)
    assert git("show", "HEAD:m.py", cwd=clone) == "def f():\n    return 2"
    assert git("log", "-1", "--format=%s", cwd=clone) == "Make f return 2"
    task, result = task_and_result(r, base, None)
    del result["patch"]
    with pytest.raises(gg.InvalidState):
        gg.format_patch(task, result)
