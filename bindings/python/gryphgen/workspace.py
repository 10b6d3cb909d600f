"""Delivery of a passing workspace task (include/gryphgen/workspace.h): deliver() commits its
patch onto a new branch of the task's local repository, never touching the repository's
HEAD, index or working tree; format_patch() gives the patch as a `git format-patch` mail that
`git am` applies."""

from __future__ import annotations

import ctypes
import json

from . import _native as N
from ._common import task_text
from ._types import Task


def _result_text(result):
    if isinstance(result, dict):
        return json.dumps(result)
    if isinstance(result, str):
        return result
    raise TypeError("gryphgen: a result is a dict or JSON text, got %s"
                    % type(result).__name__)


def _person(value, what):
    """(name, email) bytes of an identity given as None or a (name, email) pair."""
    if value is None:
        return None, None
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError("gryphgen: %s must be a (name, email) pair" % what)
    return N.encode(value[0], what + " name"), N.encode(value[1], what + " email")


def deliver(task: Task, result: dict | str, branch: str | None = None,
            author: tuple[str, str] | None = None,
            committer: tuple[str, str] | None = None) -> dict:
    """Commits a passing workspace task's patch (its result's "patch", against its
    "base_commit", else the task's workspace.ref) as one commit on a new branch of the task's
    repository, its "workspace.repo", which must be a local path.

    task and result are dicts or JSON text. branch: a name such as "fix/x" (default
    "gryphgen/<task_id>", made a valid ref name). author and committer: (name, email) pairs;
    by default $GIT_AUTHOR_NAME/$GIT_AUTHOR_EMAIL, $GIT_COMMITTER_NAME/$GIT_COMMITTER_EMAIL,
    else "gryphgen" <gryphgen@localhost>. Returns {"branch": "refs/heads/...", "commit": sha,
    "parent": sha}. Raises InvalidState (the task did not pass or has no patch),
    AlreadyExists (the branch exists: it is never moved), InvalidInput (bad JSON, a repository
    given by URL, a bad branch name), NotFound (no repository, an unknown base), IOFailure
    (the patch does not apply)."""
    opts = N.DeliverOptions()
    opts.version = 1
    opts.branch = N.encode(branch, "branch")
    opts.author_name, opts.author_email = _person(author, "author")
    opts.committer_name, opts.committer_email = _person(committer, "committer")
    out = ctypes.c_void_p()
    N.check(N.fn("gg_workspace_deliver")(N.encode(task_text(task)),
                                         N.encode(_result_text(result)), ctypes.byref(opts),
                                         ctypes.byref(out)))
    return json.loads(N.take_string(out))


def format_patch(task: Task, result: dict | str) -> str:
    """The passing task's patch as `git format-patch` text (str) for `git am`. Raises
    InvalidState when the task did not pass or has no patch, InvalidInput for bad JSON."""
    out = ctypes.c_void_p()
    N.check(N.fn("gg_workspace_format_patch")(N.encode(task_text(task)),
                                              N.encode(_result_text(result)),
                                              ctypes.byref(out)))
    return N.take_string(out)
