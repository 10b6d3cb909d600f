"""httptest.py - what the HTTP face's tests share (serve --http): a private token file,
requests with a bearer token (status and JSON body, errors included), the URL serve prints,
and a task that passes or fails at once with the replay generator."""

import json
import os
import urllib.error
import urllib.request

from gridtest import GUARD_S, read_log, require, wait_until


def token_file(path, lines):
    """Writes lines ("TOKEN ROLE [NAME]") to path, mode 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# test tokens\n" + "\n".join(lines) + "\n")
    return path


def call(url, method="GET", token=None, body=None, ctx=None, headers=None):
    """(status, parsed JSON body or text, response headers)."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=GUARD_S, context=ctx) as r:
            status, text, hdrs = r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        status, text, hdrs = e.code, e.read().decode(errors="replace"), e.headers
    try:
        return status, json.loads(text), hdrs
    except ValueError:
        return status, text, hdrs


def api_url(log, proc=None):
    """The base URL serve printed ("http api on URL"), waiting for it (None when it never
    comes). With proc, the serve's Popen, the script stands on that serve: when proc ends
    before the URL comes, or it never comes, the script ends here (require) with the log."""
    def find():
        with open(log, errors="replace") as f:
            for line in f:
                if "http api on " in line and line.endswith("\n"):  # a whole line
                    return line.split("http api on ")[1].split()[0].rstrip("/")
        return None
    url = wait_until(lambda: find() or (proc is not None and proc.poll() is not None))
    url = find() if url else None
    if proc is not None:
        require(url is not None and proc.poll() is None, "serve prints its HTTP API URL",
                read_log(log)[-2000:])
    return url


def task(task_id, passes=True):
    """A python task the replay generator passes (or fails) at once."""
    return {"task_id": task_id, "language": "python", "prompt": "return one",
            "entry_point": "f", "test": "def check(f):\n    assert f() == 1\n",
            "candidates": ["def f():\n    return %d\n" % (1 if passes else 2)]}


def jsonl(tasks):
    return "\n".join(json.dumps(t) for t in tasks) + "\n"
